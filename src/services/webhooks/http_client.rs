//! The HTTP client of deliveries: hyper with rustls, whose resolver checks every address
//! it hands to the connector (so the connection goes to an address that was checked,
//! even if the name resolves differently a moment later), no redirects followed, a
//! 15 s bound on the whole exchange and at most 4 KiB of the answer kept.

use std::{
    future::Future,
    net::SocketAddr,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::{
    Client,
    connect::{HttpConnector, dns::Name},
};

use super::target::{self, TargetRules};

/// Bound of one attempt: connect, send, and read the answer.
pub const TIMEOUT: Duration = Duration::from_secs(15);
/// How much of an answer's body is kept.
pub const BODY_LIMIT: usize = 4096;

/// A resolver that returns only addresses the rules allow (and fails otherwise).
#[derive(Debug, Clone, Copy)]
pub struct CheckedResolver(TargetRules);

type Resolving =
    Pin<Box<dyn Future<Output = std::io::Result<std::vec::IntoIter<SocketAddr>>> + Send>>;

impl tower::Service<Name> for CheckedResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = std::io::Error;
    type Future = Resolving;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let rules = self.0;
        Box::pin(async move {
            // The connector sets the port on what we return.
            target::resolve(name.as_str(), 0, rules)
                .await
                .map(Vec::into_iter)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::PermissionDenied, e))
        })
    }
}

/// What an attempt got back.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

/// The delivery client; cheap to clone.
#[derive(Clone)]
pub struct WebhookClient {
    client: Client<HttpsConnector<HttpConnector<CheckedResolver>>, Full<Bytes>>,
    rules: TargetRules,
}

impl WebhookClient {
    pub fn new(rules: TargetRules) -> Self {
        let mut http = HttpConnector::new_with_resolver(CheckedResolver(rules));
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(TIMEOUT));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .unwrap_or_else(|e| {
                // Plain http targets still work (development); https ones fail to verify.
                tracing::error!(error = %e, "no TLS root certificates: https webhook targets will fail");
                hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(empty_roots())
            });
        let connector = https.https_or_http().enable_http1().wrap_connector(http);
        let client = Client::builder(hyper_util::rt::TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(8)
            .build(connector);
        Self { client, rules }
    }

    /// POSTs `body` to `url` with `headers`, within [`TIMEOUT`].
    pub async fn post(
        &self,
        url: &str,
        headers: &[(&'static str, String)],
        body: Bytes,
    ) -> Result<Answer, String> {
        // IP literals never reach the resolver: they are checked here.
        let target = target::parse(url, self.rules).map_err(|e| e.to_string())?;
        let mut request = axum::http::Request::post(target.uri)
            .header("content-type", "application/json")
            .header(
                "user-agent",
                concat!("Tenantry-Webhooks/", env!("CARGO_PKG_VERSION")),
            );
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let request = request.body(Full::new(body)).map_err(|e| e.to_string())?;
        let exchange = async {
            let response = self.client.request(request).await.map_err(describe)?;
            let status = response.status().as_u16();
            let mut body = response.into_body();
            let mut kept = Vec::new();
            while kept.len() < BODY_LIMIT {
                match body.frame().await {
                    Some(Ok(frame)) => {
                        if let Some(data) = frame.data_ref() {
                            kept.extend_from_slice(data);
                        }
                    }
                    Some(Err(_)) | None => break,
                }
            }
            kept.truncate(BODY_LIMIT);
            Ok(Answer {
                status,
                body: String::from_utf8_lossy(&kept).into_owned(),
            })
        };
        tokio::time::timeout(TIMEOUT, exchange)
            .await
            .map_err(|_| format!("no answer within {} s", TIMEOUT.as_secs()))?
    }
}

fn empty_roots() -> rustls::ClientConfig {
    rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("the provider supports the default versions")
    .with_root_certificates(rustls::RootCertStore::empty())
    .with_no_client_auth()
}

/// The error chain of a failed request, for the attempt record.
fn describe(e: hyper_util::client::legacy::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
