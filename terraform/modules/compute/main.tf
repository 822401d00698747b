terraform {
  required_version = ">= 1.6"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.0"
    }
  }
}

data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

locals {
  https        = var.certificate_arn != ""
  jwt_key_file = "/tmp/jwt.pem"

  environment = [
    for k, v in merge(var.environment, {
      BIND_ADDR            = "0.0.0.0:${var.container_port}"
      JWT_PRIVATE_KEY_FILE = local.jwt_key_file
      # /metrics on a port of its own, which the load balancer does not route.
      METRICS_BIND_ADDR = "0.0.0.0:${var.metrics_port}"
    }) : { name = k, value = v }
  ]
  secret_arns = merge(var.secrets, { JWT_PRIVATE_KEY = var.jwt_private_key_secret_arn })
  secrets     = [for k, v in local.secret_arns : { name = k, valueFrom = v }]

  # The app reads its signing key from a file (JWT_PRIVATE_KEY_FILE) and ECS injects
  # secrets as variables, so a shell writes the key to a private file, drops the variable
  # and execs the binary with the task's command. A command override (`migrate`) keeps
  # working because the command arrives as "$@".
  entry_point = [
    "/bin/sh", "-c",
    "umask 077 && printf '%s\\n' \"$JWT_PRIVATE_KEY\" > ${local.jwt_key_file} && unset JWT_PRIVATE_KEY && exec /usr/local/bin/tenantry \"$@\"",
    "tenantry",
  ]

  log_configuration = {
    logDriver = "awslogs"
    options = {
      awslogs-group         = var.log_group_name
      awslogs-region        = data.aws_region.current.name
      awslogs-stream-prefix = "app"
    }
  }

  containers = {
    api = {
      name             = "api"
      image            = var.container_image
      essential        = true
      entryPoint       = local.entry_point
      command          = ["serve", "--no-workers"]
      environment      = local.environment
      secrets          = local.secrets
      logConfiguration = local.log_configuration
      # SIGTERM → stop accepting, drain in-flight requests, flush metering.
      stopTimeout = 30
      portMappings = [
        { containerPort = var.container_port, protocol = "tcp" },
        { containerPort = var.metrics_port, protocol = "tcp" },
      ]
      healthCheck = {
        command     = ["CMD-SHELL", "curl -fsS http://localhost:${var.container_port}/health/live || exit 1"]
        interval    = 15
        timeout     = 5
        retries     = 3
        startPeriod = 30
      }
    }
    worker = {
      name             = "worker"
      image            = var.container_image
      essential        = true
      entryPoint       = local.entry_point
      command          = ["worker"]
      environment      = local.environment
      secrets          = local.secrets
      logConfiguration = local.log_configuration
      # Give a running job the Fargate maximum to finish or requeue itself.
      stopTimeout  = 120
      portMappings = [{ containerPort = var.metrics_port, protocol = "tcp" }]
    }
  }

  task_sizes = {
    api    = { cpu = var.api.cpu, memory = var.api.memory }
    worker = { cpu = var.worker.cpu, memory = var.worker.memory }
  }
}

resource "aws_ecs_cluster" "this" {
  # checkov:skip=CKV_AWS_65: enabled by default, turned off only in dev to save cost
  name = var.name
  setting {
    name  = "containerInsights"
    value = var.container_insights ? "enabled" : "disabled"
  }
  tags = var.tags
}

# ---- IAM -------------------------------------------------------------------

data "aws_iam_policy_document" "ecs_tasks_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

# Used by ECS itself: pull the image, write logs, read the secrets into the container.
resource "aws_iam_role" "execution" {
  name               = "${var.name}-task-execution"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
  tags               = var.tags
}

resource "aws_iam_role_policy_attachment" "execution" {
  role       = aws_iam_role.execution.name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
}

resource "aws_iam_role_policy" "execution_secrets" {
  name = "read-app-secrets"
  role = aws_iam_role.execution.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect   = "Allow"
      Action   = ["secretsmanager:GetSecretValue"]
      Resource = distinct(values(local.secret_arns))
    }]
  })
}

# Used by the application: tenant files in S3, notifications through SNS.
resource "aws_iam_role" "task" {
  name               = "${var.name}-task"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "task" {
  statement {
    sid       = "ListFilesBucket"
    actions   = ["s3:ListBucket"]
    resources = [var.files_bucket_arn]
  }

  statement {
    sid       = "TenantFiles"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]
    resources = ["${var.files_bucket_arn}/*"]
  }

  dynamic "statement" {
    for_each = length(var.sns_topic_arns) > 0 ? [1] : []
    content {
      sid       = "PublishToTopics"
      actions   = ["sns:Publish"]
      resources = var.sns_topic_arns
    }
  }

  statement {
    sid = "PushEndpoints"
    actions = [
      "sns:CreatePlatformEndpoint", "sns:DeleteEndpoint", "sns:GetEndpointAttributes",
      "sns:SetEndpointAttributes", "sns:Publish",
    ]
    resources = [
      "arn:aws:sns:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:app/*",
      "arn:aws:sns:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:endpoint/*",
    ]
  }

  # SMS to a phone number has no resource ARN, so IAM can only express it as "*".
  statement {
    sid       = "PublishSms"
    actions   = ["sns:Publish"]
    resources = ["*"]
    condition {
      test     = "StringEquals"
      variable = "aws:RequestedRegion"
      values   = [data.aws_region.current.name]
    }
  }
}

resource "aws_iam_role_policy" "task" {
  name   = "tenantry-app"
  role   = aws_iam_role.task.id
  policy = data.aws_iam_policy_document.task.json
}

# ---- task definitions --------------------------------------------------------

resource "aws_ecs_task_definition" "this" {
  for_each                 = local.task_sizes
  family                   = "${var.name}-${each.key}"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = tostring(each.value.cpu)
  memory                   = tostring(each.value.memory)
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn
  container_definitions    = jsonencode([local.containers[each.key]])

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  tags = var.tags
}

# ---- load balancer -------------------------------------------------------------

resource "aws_lb" "this" {
  # checkov:skip=CKV2_AWS_76: the web ACL includes AWSManagedRulesKnownBadInputsRuleSet (dev runs without WAF)
  # checkov:skip=CKV_AWS_91: the app logs one structured line per request with request id, tenant and status; add ALB access logs when a log bucket exists
  name                       = var.name
  load_balancer_type         = "application"
  internal                   = false
  security_groups            = [var.alb_security_group_id]
  subnets                    = var.public_subnet_ids
  drop_invalid_header_fields = true
  enable_deletion_protection = var.deletion_protection
  idle_timeout               = 60
  tags                       = var.tags
}

resource "aws_lb_target_group" "api" {
  # checkov:skip=CKV_AWS_378: TLS ends at the ALB; ALB to task traffic stays inside the VPC's private subnets
  name                 = "${var.name}-api"
  port                 = var.container_port
  protocol             = "HTTP"
  target_type          = "ip"
  vpc_id               = var.vpc_id
  deregistration_delay = 30

  health_check {
    path                = var.health_check_path
    matcher             = "200"
    interval            = 15
    timeout             = 5
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }

  tags = var.tags
}

resource "aws_lb_listener" "http" {
  # checkov:skip=CKV_AWS_2: port 80 only redirects to HTTPS when a certificate is set (plain HTTP in dev only)
  load_balancer_arn = aws_lb.this.arn
  port              = 80
  protocol          = "HTTP"

  default_action {
    type             = local.https ? "redirect" : "forward"
    target_group_arn = local.https ? null : aws_lb_target_group.api.arn

    dynamic "redirect" {
      for_each = local.https ? [1] : []
      content {
        port        = "443"
        protocol    = "HTTPS"
        status_code = "HTTP_301"
      }
    }
  }

  tags = var.tags
}

resource "aws_lb_listener" "https" {
  count             = local.https ? 1 : 0
  load_balancer_arn = aws_lb.this.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = var.certificate_arn

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.api.arn
  }

  tags = var.tags
}

# ---- services --------------------------------------------------------------------
# Deploys register new task definition revisions and scaling moves desired_count, so
# Terraform ignores both after creation.

resource "aws_ecs_service" "api" {
  name                              = "${var.name}-api"
  cluster                           = aws_ecs_cluster.this.id
  task_definition                   = aws_ecs_task_definition.this["api"].arn
  desired_count                     = var.api.min_count
  launch_type                       = "FARGATE"
  platform_version                  = "LATEST"
  health_check_grace_period_seconds = 60
  propagate_tags                    = "SERVICE"
  enable_ecs_managed_tags           = true

  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200
  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [var.app_security_group_id]
    assign_public_ip = false
  }

  load_balancer {
    target_group_arn = aws_lb_target_group.api.arn
    container_name   = "api"
    container_port   = var.container_port
  }

  lifecycle {
    ignore_changes = [task_definition, desired_count]
  }

  tags       = var.tags
  depends_on = [aws_lb_listener.http, aws_lb_listener.https]
}

resource "aws_ecs_service" "worker" {
  name                    = "${var.name}-worker"
  cluster                 = aws_ecs_cluster.this.id
  task_definition         = aws_ecs_task_definition.this["worker"].arn
  desired_count           = var.worker.min_count
  launch_type             = "FARGATE"
  platform_version        = "LATEST"
  propagate_tags          = "SERVICE"
  enable_ecs_managed_tags = true

  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200
  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [var.app_security_group_id]
    assign_public_ip = false
  }

  lifecycle {
    ignore_changes = [task_definition, desired_count]
  }

  tags = var.tags
}

# ---- autoscaling -----------------------------------------------------------------

locals {
  scaling = {
    api = {
      service = aws_ecs_service.api.name
      min     = var.api.min_count
      max     = var.api.max_count
      cpu     = var.api.cpu_target
      in_s    = var.api.scale_in_cooldown_s
      out_s   = var.api.scale_out_cooldown_s
    }
    worker = {
      service = aws_ecs_service.worker.name
      min     = var.worker.min_count
      max     = var.worker.max_count
      cpu     = var.worker.cpu_target
      in_s    = var.worker.scale_in_cooldown_s
      out_s   = var.worker.scale_out_cooldown_s
    }
  }
}

resource "aws_appautoscaling_target" "this" {
  for_each           = local.scaling
  service_namespace  = "ecs"
  scalable_dimension = "ecs:service:DesiredCount"
  resource_id        = "service/${aws_ecs_cluster.this.name}/${each.value.service}"
  min_capacity       = each.value.min
  max_capacity       = each.value.max
  tags               = var.tags
}

resource "aws_appautoscaling_policy" "cpu" {
  for_each           = local.scaling
  name               = "${var.name}-${each.key}-cpu"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.this[each.key].service_namespace
  scalable_dimension = aws_appautoscaling_target.this[each.key].scalable_dimension
  resource_id        = aws_appautoscaling_target.this[each.key].resource_id

  target_tracking_scaling_policy_configuration {
    target_value       = each.value.cpu
    scale_in_cooldown  = each.value.in_s
    scale_out_cooldown = each.value.out_s
    predefined_metric_specification {
      predefined_metric_type = "ECSServiceAverageCPUUtilization"
    }
  }
}

resource "aws_appautoscaling_policy" "requests" {
  name               = "${var.name}-api-requests"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.this["api"].service_namespace
  scalable_dimension = aws_appautoscaling_target.this["api"].scalable_dimension
  resource_id        = aws_appautoscaling_target.this["api"].resource_id

  target_tracking_scaling_policy_configuration {
    target_value       = var.api.requests_per_target
    scale_in_cooldown  = var.api.scale_in_cooldown_s
    scale_out_cooldown = var.api.scale_out_cooldown_s
    predefined_metric_specification {
      predefined_metric_type = "ALBRequestCountPerTarget"
      resource_label         = "${aws_lb.this.arn_suffix}/${aws_lb_target_group.api.arn_suffix}"
    }
  }
}

# Workers scale on the job backlog. Every worker publishes Tenantry/JobsQueueDepth (ready
# jobs in Redis) as a CloudWatch Embedded Metric Format log line every 30 s (see
# docs/scaling.md); two alarms drive a step policy each. CPU target tracking above still
# scales out for heavy jobs; the longer scale-in keeps the two from fighting.

locals {
  queue_metric = {
    namespace  = "Tenantry"
    name       = "JobsQueueDepth"
    dimensions = { Deployment = var.metrics_deployment }
  }
}

resource "aws_appautoscaling_policy" "worker_queue_out" {
  name               = "${var.name}-worker-queue-out"
  policy_type        = "StepScaling"
  service_namespace  = aws_appautoscaling_target.this["worker"].service_namespace
  scalable_dimension = aws_appautoscaling_target.this["worker"].scalable_dimension
  resource_id        = aws_appautoscaling_target.this["worker"].resource_id

  step_scaling_policy_configuration {
    adjustment_type         = "ChangeInCapacity"
    cooldown                = var.worker.scale_out_cooldown_s
    metric_aggregation_type = "Maximum"

    # Bounds are relative to the alarm threshold (queue_high).
    step_adjustment {
      metric_interval_lower_bound = 0
      metric_interval_upper_bound = 3 * var.worker.queue_high
      scaling_adjustment          = 1
    }
    step_adjustment {
      metric_interval_lower_bound = 3 * var.worker.queue_high
      scaling_adjustment          = 2
    }
  }
}

resource "aws_appautoscaling_policy" "worker_queue_in" {
  name               = "${var.name}-worker-queue-in"
  policy_type        = "StepScaling"
  service_namespace  = aws_appautoscaling_target.this["worker"].service_namespace
  scalable_dimension = aws_appautoscaling_target.this["worker"].scalable_dimension
  resource_id        = aws_appautoscaling_target.this["worker"].resource_id

  step_scaling_policy_configuration {
    adjustment_type         = "ChangeInCapacity"
    cooldown                = var.worker.scale_in_cooldown_s
    metric_aggregation_type = "Maximum"

    step_adjustment {
      metric_interval_upper_bound = 0
      scaling_adjustment          = -1
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "worker_queue_high" {
  alarm_name          = "${var.name}-worker-queue-high"
  alarm_description   = "Job backlog above ${var.worker.queue_high}: add workers."
  namespace           = local.queue_metric.namespace
  metric_name         = local.queue_metric.name
  dimensions          = local.queue_metric.dimensions
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 2
  threshold           = var.worker.queue_high
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_appautoscaling_policy.worker_queue_out.arn]
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "worker_queue_low" {
  alarm_name          = "${var.name}-worker-queue-low"
  alarm_description   = "Job backlog below ${var.worker.queue_low} for 10 minutes: remove a worker."
  namespace           = local.queue_metric.namespace
  metric_name         = local.queue_metric.name
  dimensions          = local.queue_metric.dimensions
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 10
  threshold           = var.worker.queue_low
  comparison_operator = "LessThanThreshold"
  # No data means no worker is publishing: do not scale in on silence.
  treat_missing_data = "notBreaching"
  alarm_actions      = [aws_appautoscaling_policy.worker_queue_in.arn]
  tags               = var.tags
}

# ---- WAF ---------------------------------------------------------------------------
# AWS managed rules against common exploits and known bad IPs, plus a coarse per-IP
# flood guard. Plan-based rate limits per tenant stay in the application.

locals {
  waf_managed_rule_groups = {
    common        = { priority = 10, name = "AWSManagedRulesCommonRuleSet" }
    bad-inputs    = { priority = 20, name = "AWSManagedRulesKnownBadInputsRuleSet" }
    ip-reputation = { priority = 30, name = "AWSManagedRulesAmazonIpReputationList" }
  }
}

resource "aws_wafv2_web_acl" "this" {
  # checkov:skip=CKV_AWS_192: AWSManagedRulesKnownBadInputsRuleSet (Log4j) is in the dynamic rule list below
  count       = var.waf_enabled ? 1 : 0
  name        = var.name
  description = "tenantry API"
  scope       = "REGIONAL"

  default_action {
    allow {}
  }

  dynamic "rule" {
    for_each = local.waf_managed_rule_groups
    content {
      name     = rule.key
      priority = rule.value.priority

      override_action {
        none {}
      }

      statement {
        managed_rule_group_statement {
          vendor_name = "AWS"
          name        = rule.value.name

          # File uploads and large JSON bodies are bounded by the app's own limits; the
          # common rule set's 8 KB body cap would block them, so it only counts.
          dynamic "rule_action_override" {
            for_each = rule.key == "common" ? ["SizeRestrictions_BODY"] : []
            content {
              name = rule_action_override.value
              action_to_use {
                count {}
              }
            }
          }
        }
      }

      visibility_config {
        cloudwatch_metrics_enabled = true
        metric_name                = "${var.name}-${rule.key}"
        sampled_requests_enabled   = true
      }
    }
  }

  rule {
    name     = "per-ip-flood"
    priority = 40

    action {
      block {}
    }

    statement {
      rate_based_statement {
        limit              = var.waf_rate_limit_per_ip
        aggregate_key_type = "IP"
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${var.name}-per-ip-flood"
      sampled_requests_enabled   = true
    }
  }

  visibility_config {
    cloudwatch_metrics_enabled = true
    metric_name                = var.name
    sampled_requests_enabled   = true
  }

  tags = var.tags
}

resource "aws_wafv2_web_acl_association" "this" {
  count        = var.waf_enabled ? 1 : 0
  resource_arn = aws_lb.this.arn
  web_acl_arn  = aws_wafv2_web_acl.this[0].arn
}

resource "aws_cloudwatch_log_group" "waf" {
  # checkov:skip=CKV_AWS_158: encrypted with the CloudWatch Logs service key; Authorization and X-API-Key are redacted
  # checkov:skip=CKV_AWS_338: retention is a variable, sized per environment
  count             = var.waf_enabled ? 1 : 0
  name              = "aws-waf-logs-${var.name}"
  retention_in_days = var.waf_log_retention_days
  tags              = var.tags
}

resource "aws_wafv2_web_acl_logging_configuration" "this" {
  count                   = var.waf_enabled ? 1 : 0
  resource_arn            = aws_wafv2_web_acl.this[0].arn
  log_destination_configs = [aws_cloudwatch_log_group.waf[0].arn]

  redacted_fields {
    single_header {
      name = "authorization"
    }
  }

  redacted_fields {
    single_header {
      name = "x-api-key"
    }
  }
}
