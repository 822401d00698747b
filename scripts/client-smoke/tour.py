"""A short tour with the Python client generated from /openapi.json (scripts/client-smoke.sh).

Fails when a response does not parse into its typed model: onboarding, login, an API
key, resources (list items are `Resource`), a problem response, a job (`CreateEchoJob`, one
branch of the `CreateJob` union), the caller's sessions, an invitation, an SMS template
(one branch of `TemplateRequest`) and two sends (`SendSmsWithBody`, `SendSmsWithTemplate`).
"""
import sys
import uuid

from tenantry_client import AuthenticatedClient, Client
from tenantry_client.api.api_keys import api_keys_create as create_key
from tenantry_client.api.auth import auth_login as login
from tenantry_client.api.auth import auth_me_get as me
from tenantry_client.api.auth import auth_sessions_list as list_sessions
from tenantry_client.api.invitations import invitations_create as create_invitation
from tenantry_client.api.jobs import jobs_create as create_job
from tenantry_client.api.jobs import jobs_get as get_job
from tenantry_client.api.notifications import notifications_sms as send_sms
from tenantry_client.api.notifications import notifications_templates_create as create_template
from tenantry_client.api.resources import resources_create as create_resource
from tenantry_client.api.resources import resources_get as get_resource
from tenantry_client.api.resources import resources_list as list_resources
from tenantry_client.api.tenants import tenants_create as create_tenant
from tenantry_client.models import (
    Accepted,
    CreateApiKey,
    CreateInvitation,
    CreateEchoJob,
    CreateEchoJobType,
    CreateResource,
    CreateTenant,
    EchoPayload,
    ErrorCode,
    Grant,
    Invitation,
    Job,
    JsonObject,
    LoginRequest,
    Me,
    NewAdmin,
    Onboarded,
    PaginatedResource,
    PaginatedSession,
    Problem,
    Queued,
    Resource,
    SendSmsWithBody,
    SendSmsWithTemplate,
    SmsTemplateRequest,
    SmsTemplateRequestChannel,
    Template,
    TemplateVariables,
    TokenPair,
)

base_url = sys.argv[1]
slug = f"smoke-{uuid.uuid4().hex[:8]}"
email, password = f"admin@{slug}.example.com", "smoke password 1"

public = Client(base_url=base_url, raise_on_unexpected_status=True)
onboarded = create_tenant.sync(
    client=public,
    body=CreateTenant(name="Smoke Ltd", slug=slug, admin=NewAdmin(email=email, password=password)),
)
assert isinstance(onboarded, Onboarded), onboarded
assert onboarded.tenant.slug == slug

tokens = login.sync(client=public, body=LoginRequest(email=email, password=password, tenant=slug))
assert isinstance(tokens, TokenPair), tokens
admin = AuthenticatedClient(base_url=base_url, token=tokens.access_token, raise_on_unexpected_status=True)
who = me.sync(client=admin)
assert isinstance(who, Me), who
sessions = list_sessions.sync(client=admin)
assert isinstance(sessions, PaginatedSession), sessions
assert sum(1 for s in sessions.items if s.current) == 1, sessions
invitation = create_invitation.sync(
    client=admin, body=CreateInvitation(email=f"new@{slug}.example.com", roles=["developer"])
)
assert isinstance(invitation, Invitation), invitation
assert invitation.state == "pending" and invitation.roles == ["developer"], invitation

created = create_key.sync(
    client=admin,
    body=CreateApiKey(name="smoke", permissions=[Grant.RESOURCES, Grant.JOBSREAD]),
)
key = created.key
with_key = AuthenticatedClient(
    base_url=base_url, token=key, prefix="", auth_header_name="X-API-Key", raise_on_unexpected_status=True
)
resource = create_resource.sync(
    client=with_key, body=CreateResource(name="first", data=JsonObject.from_dict({"colour": "blue"}))
)
assert isinstance(resource, Resource), resource
assert resource.data.additional_properties == {"colour": "blue"}
page = list_resources.sync(client=with_key)
assert isinstance(page, PaginatedResource), page
assert all(isinstance(item, Resource) for item in page.items) and page.items[0].id == resource.id

missing = get_resource.sync(client=with_key, id=uuid.uuid4())
assert isinstance(missing, Problem), missing
assert missing.status == 404 and missing.code == ErrorCode.NOT_FOUND, missing

accepted = create_job.sync(
    client=admin, body=CreateEchoJob(type_=CreateEchoJobType.ECHO, payload=EchoPayload.from_dict({"message": "hello"}))
)
assert isinstance(accepted, Accepted) and accepted.status == "queued", accepted
job = get_job.sync(client=with_key, id=accepted.id)
assert isinstance(job, Job) and job.payload.additional_properties == {"message": "hello"}, job

# A send is one of two shapes: its own text, or a template filled from variables.
template = create_template.sync(
    client=admin,
    body=SmsTemplateRequest(name="greeting", channel=SmsTemplateRequestChannel.SMS, body="Hello {{ name }}"),
)
assert isinstance(template, Template) and template.channel == "sms", template
sent = send_sms.sync(
    client=admin,
    body=SendSmsWithTemplate(
        to="+15551234567", template="greeting", variables=TemplateVariables.from_dict({"name": "Ada"})
    ),
)
assert isinstance(sent, Queued) and sent.status == "queued", sent
sent = send_sms.sync(client=admin, body=SendSmsWithBody(to="+15551234567", body="Hello"))
assert isinstance(sent, Queued) and sent.status == "queued", sent
print(f"client tour passed: tenant {slug}, resource {resource.id}, job {job.id}")
