//! TLS for database connections with rustls, following libpq's `sslmode`
//! semantics so a URL that works with `psql` works here.
//! <https://www.postgresql.org/docs/current/libpq-ssl.html>

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::{ConnInfo, DbError, SslMode};

/// Builds the connector for `info`. With `prefer` and `require` (and no
/// `sslrootcert`) libpq encrypts without checking the certificate; we do the
/// same, because refusing would break URLs that work everywhere else.
pub(super) fn connector(info: &ConnInfo) -> Result<MakeRustlsConnect, DbError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let tls_error = |message: String| DbError::Tls {
        target: info.to_string(),
        message,
    };
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error(e.to_string()))?;
    let verify = match info.sslmode() {
        SslMode::Disable | SslMode::Prefer => false,
        SslMode::Require => info.sslrootcert().is_some(),
        SslMode::VerifyCa | SslMode::VerifyFull => true,
    };
    let config = if verify {
        let mut roots = RootCertStore::empty();
        match info.sslrootcert() {
            Some(path) => {
                let certs = CertificateDer::pem_file_iter(path).map_err(|e| {
                    tls_error(format!("cannot read sslrootcert `{}`: {e}", path.display()))
                })?;
                for cert in certs {
                    let cert = cert.map_err(|e| {
                        tls_error(format!("bad certificate in `{}`: {e}", path.display()))
                    })?;
                    roots.add(cert).map_err(|e| tls_error(e.to_string()))?;
                }
            }
            None => {
                let found = rustls_native_certs::load_native_certs();
                for cert in found.certs {
                    // A system store may hold certificates rustls cannot
                    // parse; skipping them is what every client does.
                    let _ = roots.add(cert);
                }
            }
        }
        if roots.is_empty() {
            return Err(tls_error(
                "no trusted root certificates; set `sslrootcert` in the URL".into(),
            ));
        }
        builder.with_root_certificates(roots)
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(EncryptOnly(
                provider.signature_verification_algorithms,
            )))
    };
    // libpq's `sslcert` / `sslkey`: a client certificate for servers that
    // authenticate with one (`cert` in pg_hba.conf).
    let config = match info.client_cert() {
        Some((cert, key)) => {
            let certs = CertificateDer::pem_file_iter(cert)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| tls_error(format!("cannot read sslcert `{}`: {e}", cert.display())))?;
            let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
                tls_error(format!(
                    "cannot read sslkey `{}` (an unencrypted PEM key is needed): {e}",
                    key.display()
                ))
            })?;
            config.with_client_auth_cert(certs, key).map_err(|e| {
                // webpki takes only X.509 version 3 certificates; an
                // `openssl x509 -req` without extensions makes a v1.
                let v1 = e.to_string().contains("UnsupportedCertVersion");
                tls_error(format!(
                    "the client certificate `{}` is not usable: {e}{}",
                    cert.display(),
                    if v1 {
                        " (a version 1 certificate: reissue it as version 3, with extensions)"
                    } else {
                        ""
                    }
                ))
            })?
        }
        None => config.with_no_client_auth(),
    };
    Ok(MakeRustlsConnect::new(config))
}

/// Accepts any certificate but still checks handshake signatures: libpq's
/// `sslmode=require` without a root certificate.
#[derive(Debug)]
struct EncryptOnly(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}
