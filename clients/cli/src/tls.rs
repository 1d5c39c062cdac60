//! TLS for a deployed stack (`https://` and `wss://` endpoints): rustls with the aws-lc-rs provider, trusting the
//! system's root certificates (rustls-native-certs: the OS store, or `SSL_CERT_FILE` / `SSL_CERT_DIR`). Both the
//! HTTP client and the WebSocket connection use the one config built here; plain `http://` / `ws://` endpoints
//! (a local stack) never load it, so they work on a machine without any certificates.

use std::sync::{Arc, OnceLock};

use rustls::{ClientConfig, RootCertStore};

use crate::error::{CliError, CliResult};

/// Whether `url` needs TLS (`https://` or `wss://`).
pub fn is_secure(url: &str) -> bool {
    url.starts_with("https://") || url.starts_with("wss://")
}

/// The client config for TLS endpoints, built once per process (loading the root certificates reads the disk).
pub fn client_config() -> CliResult<Arc<ClientConfig>> {
    static CONFIG: OnceLock<Result<Arc<ClientConfig>, String>> = OnceLock::new();
    CONFIG.get_or_init(|| build().map(Arc::new)).clone().map_err(CliError::Setup)
}

fn build() -> Result<ClientConfig, String> {
    let native = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _unparsable) = roots.add_parsable_certificates(native.certs);
    if added == 0 {
        let errors: Vec<String> = native.errors.iter().map(ToString::to_string).collect();
        let errors = if errors.is_empty() { String::new() } else { format!(" ({})", errors.join("; ")) };
        return Err(format!(
            "no trusted root certificates for TLS{errors}: install the system's CA certificates (e.g. the \
             ca-certificates package) or point SSL_CERT_FILE at a PEM bundle"
        ));
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("cannot set up TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_and_wss_need_tls() {
        assert!(is_secure("https://abc123.execute-api.eu-west-1.amazonaws.com"));
        assert!(is_secure("wss://abc123.execute-api.eu-west-1.amazonaws.com/prod"));
        assert!(!is_secure("http://127.0.0.1:4566/_aws/execute-api/h1"));
        assert!(!is_secure("ws://127.0.0.1:4566/_aws/execute-api/w1/prod"));
    }

    #[test]
    fn the_config_trusts_the_system_roots_and_is_built_once() {
        let config = client_config().expect("this machine has CA certificates");
        assert!(Arc::ptr_eq(&config, &client_config().unwrap()));
        assert!(config.alpn_protocols.is_empty(), "no ALPN: HTTP/1.1 for the API, and the WebSocket upgrade");
    }
}
