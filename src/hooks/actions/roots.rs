//! Finds the CA certificates that HTTPS hook calls trust: the PEM bundle named by
//! `SSL_CERT_FILE`, the PEM files in `SSL_CERT_DIR`, or else the system's bundle
//! (`/etc/ssl/certs/ca-certificates.crt` from Debian's `ca-certificates`, and the
//! other distributions' usual places). The bundle is read for each HTTPS call, so an
//! updated `ca-certificates` counts without a restart; a hook fires a few times per
//! operation, so the cost (one file of about 200 KiB) does not matter.
//!
//! It only loads certificates: the chain is verified by rustls against what it returns,
//! and it must never fall back to trusting everything. When nothing can be loaded it
//! says where it looked and what to install. footrest does not bundle roots of its
//! own: the system's updates (a distrusted CA, a new one) apply, and the binary is 43,500
//! bytes smaller.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use ureq::tls::{Certificate, PemItem, parse_pem};

/// Where distributions keep one PEM bundle of the trusted CAs, most common first.
pub(crate) const SYSTEM_BUNDLES: &[&str] = &[
    // Debian, Ubuntu, Raspberry Pi OS, Arch, Alpine, Gentoo (ca-certificates).
    "/etc/ssl/certs/ca-certificates.crt",
    // Fedora, RHEL, CentOS.
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    // openSUSE.
    "/etc/ssl/ca-bundle.pem",
    // Alpine, OpenBSD, some NAS firmwares.
    "/etc/ssl/cert.pem",
];

/// Where the roots came from and the certificates themselves.
pub(crate) struct Roots {
    pub source: String,
    pub certs: Vec<Certificate<'static>>,
}

/// The roots for an HTTPS call, from the environment or the system; an error in human
/// terms (what is missing, what to install or set) when there are none.
pub(crate) fn load() -> Result<Roots, String> {
    let bundles: Vec<&Path> = SYSTEM_BUNDLES.iter().map(Path::new).collect();
    load_from(
        std::env::var_os("SSL_CERT_FILE"),
        std::env::var_os("SSL_CERT_DIR"),
        &bundles,
    )
}

/// [`load`] with its inputs spelled out: the values of `SSL_CERT_FILE` and
/// `SSL_CERT_DIR` (either set means only they are used, as OpenSSL does) and the system
/// bundles to try in order.
pub(crate) fn load_from(
    cert_file: Option<OsString>,
    cert_dir: Option<OsString>,
    bundles: &[&Path],
) -> Result<Roots, String> {
    let cert_file = cert_file.filter(|v| !v.is_empty());
    let cert_dir = cert_dir.filter(|v| !v.is_empty());
    if cert_file.is_some() || cert_dir.is_some() {
        return from_env(cert_file, cert_dir);
    }
    for bundle in bundles {
        let bytes = match std::fs::read(bundle) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                return Err(format!(
                    "the CA certificates in {} could not be read: {e}; HTTPS hooks need \
                     them (check its permissions, or set SSL_CERT_FILE to a readable PEM bundle)",
                    bundle.display()
                ));
            }
        };
        let certs = certs_in(&bytes);
        if certs.is_empty() {
            return Err(format!(
                "{} holds no PEM certificates; HTTPS hooks need them (run \
                 update-ca-certificates, or reinstall the ca-certificates package)",
                bundle.display()
            ));
        }
        return Ok(Roots {
            source: bundle.display().to_string(),
            certs,
        });
    }
    let looked: Vec<String> = bundles.iter().map(|b| b.display().to_string()).collect();
    Err(format!(
        "HTTPS hooks need the system's CA certificates, but none of {} exists; install \
         them (apt-get install ca-certificates) or set SSL_CERT_FILE to a PEM bundle",
        looked.join(", ")
    ))
}

fn from_env(cert_file: Option<OsString>, cert_dir: Option<OsString>) -> Result<Roots, String> {
    let mut certs = Vec::new();
    let mut sources = Vec::new();
    if let Some(file) = cert_file {
        let path = PathBuf::from(file);
        let bytes = std::fs::read(&path).map_err(|e| {
            format!(
                "SSL_CERT_FILE names {}, which could not be read: {e}; point it at a PEM \
                 bundle of CA certificates, or unset it to use the system's",
                path.display()
            )
        })?;
        certs.extend(certs_in(&bytes));
        sources.push(path.display().to_string());
    }
    if let Some(dirs) = cert_dir {
        // A list like PATH, as OpenSSL reads it.
        for dir in std::env::split_paths(&dirs) {
            let entries = std::fs::read_dir(&dir).map_err(|e| {
                format!(
                    "SSL_CERT_DIR names {}, which could not be read: {e}; point it at a \
                     directory of PEM certificates, or unset it to use the system's",
                    dir.display()
                )
            })?;
            let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
            paths.sort();
            for path in paths {
                // Unreadable entries (sub-directories, dangling links) are skipped,
                // as OpenSSL skips them.
                if let Ok(bytes) = std::fs::read(&path) {
                    certs.extend(certs_in(&bytes));
                }
            }
            sources.push(dir.display().to_string());
        }
    }
    if certs.is_empty() {
        return Err(format!(
            "no PEM certificates in {} (from SSL_CERT_FILE / SSL_CERT_DIR); HTTPS hooks \
             need them: point those at CA certificates, or unset them to use the system's",
            sources.join(", ")
        ));
    }
    Ok(Roots {
        source: sources.join(", "),
        certs,
    })
}

/// The certificates in a PEM text; keys and malformed sections are skipped (rustls
/// skips certificates it cannot parse in the same way).
fn certs_in(pem: &[u8]) -> Vec<Certificate<'static>> {
    parse_pem(pem)
        .filter_map(|item| match item {
            Ok(PemItem::Certificate(cert)) => Some(cert),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real CA certificate (ISRG Root X1, Let's Encrypt's root), so the parse is real.
    const ISRG_ROOT_X1: &str = "-----BEGIN CERTIFICATE-----
MIIFazCCA1OgAwIBAgIRAIIQz7DSQONZRGPgu2OCiwAwDQYJKoZIhvcNAQELBQAw
TzELMAkGA1UEBhMCVVMxKTAnBgNVBAoTIEludGVybmV0IFNlY3VyaXR5IFJlc2Vh
cmNoIEdyb3VwMRUwEwYDVQQDEwxJU1JHIFJvb3QgWDEwHhcNMTUwNjA0MTEwNDM4
WhcNMzUwNjA0MTEwNDM4WjBPMQswCQYDVQQGEwJVUzEpMCcGA1UEChMgSW50ZXJu
ZXQgU2VjdXJpdHkgUmVzZWFyY2ggR3JvdXAxFTATBgNVBAMTDElTUkcgUm9vdCBY
MTCCAiIwDQYJKoZIhvcNAQEBBQADggIPADCCAgoCggIBAK3oJHP0FDfzm54rVygc
h77ct984kIxuPOZXoHj3dcKi/vVqbvYATyjb3miGbESTtrFj/RQSa78f0uoxmyF+
0TM8ukj13Xnfs7j/EvEhmkvBioZxaUpmZmyPfjxwv60pIgbz5MDmgK7iS4+3mX6U
A5/TR5d8mUgjU+g4rk8Kb4Mu0UlXjIB0ttov0DiNewNwIRt18jA8+o+u3dpjq+sW
T8KOEUt+zwvo/7V3LvSye0rgTBIlDHCNAymg4VMk7BPZ7hm/ELNKjD+Jo2FR3qyH
B5T0Y3HsLuJvW5iB4YlcNHlsdu87kGJ55tukmi8mxdAQ4Q7e2RCOFvu396j3x+UC
B5iPNgiV5+I3lg02dZ77DnKxHZu8A/lJBdiB3QW0KtZB6awBdpUKD9jf1b0SHzUv
KBds0pjBqAlkd25HN7rOrFleaJ1/ctaJxQZBKT5ZPt0m9STJEadao0xAH0ahmbWn
OlFuhjuefXKnEgV4We0+UXgVCwOPjdAvBbI+e0ocS3MFEvzG6uBQE3xDk3SzynTn
jh8BCNAw1FtxNrQHusEwMFxIt4I7mKZ9YIqioymCzLq9gwQbooMDQaHWBfEbwrbw
qHyGO0aoSCqI3Haadr8faqU9GY/rOPNk3sgrDQoo//fb4hVC1CLQJ13hef4Y53CI
rU7m2Ys6xt0nUW7/vGT1M0NPAgMBAAGjQjBAMA4GA1UdDwEB/wQEAwIBBjAPBgNV
HRMBAf8EBTADAQH/MB0GA1UdDgQWBBR5tFnme7bl5AFzgAiIyBpY9umbbjANBgkq
hkiG9w0BAQsFAAOCAgEAVR9YqbyyqFDQDLHYGmkgJykIrGF1XIpu+ILlaS/V9lZL
ubhzEFnTIZd+50xx+7LSYK05qAvqFyFWhfFQDlnrzuBZ6brJFe+GnY+EgPbk6ZGQ
3BebYhtF8GaV0nxvwuo77x/Py9auJ/GpsMiu/X1+mvoiBOv/2X/qkSsisRcOj/KK
NFtY2PwByVS5uCbMiogziUwthDyC3+6WVwW6LLv3xLfHTjuCvjHIInNzktHCgKQ5
ORAzI4JMPJ+GslWYHb4phowim57iaztXOoJwTdwJx4nLCgdNbOhdjsnvzqvHu7Ur
TkXWStAmzOVyyghqpZXjFaH3pO3JLF+l+/+sKAIuvtd7u+Nxe5AW0wdeRlN8NwdC
jNPElpzVmbUq4JUagEiuTDkHzsxHpFKVK7q4+63SM1N95R1NbdWhscdCb+ZAJzVc
oyi3B43njTOQ5yOf+1CceWxG1bQVs5ZufpsMljq4Ui0/1lvh+wjChP4kqKOJ2qxq
4RgqsahDYVvTH9w7jXbyLeiNdd8XM2w9U/t7y0Ff/9yi0GE44Za4rF2LN9d11TPA
mRGunUHBcnWEvgJBQl9nJEiU0Zsnvgc/ubhPgXRR4Xq37Z0j4r7g1SgEEzwxA57d
emyPxgcYxn/eR44/KJ4EBs+lVDR3veyJm+kXQ99b21/+jh5Xos1AnX5iItreGCc=
-----END CERTIFICATE-----
";

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// The machine's own store loads: scripts/ensure-deps installs ca-certificates, as
    /// the Debian package depends on it. Checked without the environment's overrides.
    #[test]
    fn the_system_store_loads() {
        let bundles: Vec<&Path> = SYSTEM_BUNDLES.iter().map(Path::new).collect();
        let roots = load_from(None, None, &bundles).unwrap();
        assert_eq!(roots.source, SYSTEM_BUNDLES[0]);
        // Mozilla's program has well over a hundred roots; a handful would mean a
        // truncated or wrong file.
        assert!(roots.certs.len() > 50, "{} roots", roots.certs.len());
    }

    #[test]
    fn the_first_bundle_that_exists_is_used_and_keys_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.crt");
        let text = format!(
            "junk before\n{ISRG_ROOT_X1}-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n{ISRG_ROOT_X1}"
        );
        let bundle = write(dir.path(), "bundle.crt", &text);
        let roots = load_from(None, None, &[&missing, &bundle]).unwrap();
        assert_eq!(roots.source, bundle.display().to_string());
        assert_eq!(roots.certs.len(), 2);
        assert_eq!(roots.certs[0].der()[0], 0x30, "DER starts with a SEQUENCE");
    }

    #[test]
    fn no_bundle_says_where_it_looked_and_what_to_install() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.crt");
        let b = dir.path().join("b.pem");
        let err = load_from(None, None, &[&a, &b]).err().unwrap();
        assert!(err.contains(&a.display().to_string()), "{err}");
        assert!(err.contains(&b.display().to_string()), "{err}");
        assert!(err.contains("apt-get install ca-certificates"), "{err}");
        assert!(err.contains("SSL_CERT_FILE"), "{err}");
    }

    #[test]
    fn an_empty_bundle_is_an_error_not_an_empty_trust_store() {
        let dir = tempfile::tempdir().unwrap();
        let bundle = write(dir.path(), "empty.crt", "");
        let err = load_from(None, None, &[&bundle]).err().unwrap();
        assert!(err.contains("holds no PEM certificates"), "{err}");
        assert!(err.contains(&bundle.display().to_string()), "{err}");
    }

    #[test]
    fn ssl_cert_file_and_dir_replace_the_system_store() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(dir.path(), "one.pem", ISRG_ROOT_X1);
        let certs = dir.path().join("certs");
        std::fs::create_dir(&certs).unwrap();
        write(&certs, "a.pem", ISRG_ROOT_X1);
        write(&certs, "b.pem", ISRG_ROOT_X1);
        std::fs::create_dir(certs.join("sub")).unwrap();
        let system = write(dir.path(), "system.crt", ISRG_ROOT_X1);

        let roots = load_from(Some(file.clone().into()), None, &[&system]).unwrap();
        assert_eq!(
            (roots.source, roots.certs.len()),
            (file.display().to_string(), 1)
        );
        let roots = load_from(None, Some(certs.clone().into()), &[&system]).unwrap();
        assert_eq!(roots.certs.len(), 2);
        let roots = load_from(Some(file.into()), Some(certs.into()), &[&system]).unwrap();
        assert_eq!(roots.certs.len(), 3);
    }

    #[test]
    fn a_wrong_ssl_cert_file_is_named_and_never_falls_back() {
        let dir = tempfile::tempdir().unwrap();
        let system = write(dir.path(), "system.crt", ISRG_ROOT_X1);
        let missing = dir.path().join("nope.pem");
        let err = load_from(Some(missing.clone().into()), None, &[&system])
            .err()
            .unwrap();
        assert!(err.starts_with("SSL_CERT_FILE names"), "{err}");
        assert!(err.contains(&missing.display().to_string()), "{err}");
        let empty = write(dir.path(), "empty.pem", "not a certificate\n");
        let err = load_from(Some(empty.into()), None, &[&system])
            .err()
            .unwrap();
        assert!(err.contains("no PEM certificates"), "{err}");
        // An empty variable counts as unset, as in OpenSSL.
        let roots = load_from(Some(OsString::new()), Some(OsString::new()), &[&system]).unwrap();
        assert_eq!(roots.certs.len(), 1);
    }
}
