//! TLS at the edge: certificates picked by SNI, swapped atomically on reload.
//!
//! Pingora's rustls listener builds its `ServerConfig` once, at startup, and its
//! file-based setup panics on a bad file. Giving it a resolver instead means a
//! reload replaces every certificate without touching the listener, and that the
//! files are read and checked here first, so nothing unchecked reaches Pingora.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use pingora_core::listeners::tls::TlsSettings;
use pingora_core::protocols::ALPN;
use rustls::server::danger::ClientCertVerifier;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{Error as TlsError, InconsistentKeys, RootCertStore};
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tollgate_config::spans::SpanIndex;

use crate::client_tls::{ClientCa, ClientVerifier, IdentityCallback, NoClientCerts};
use tollgate_config::{ClientVerify, Config, ConfigError, ConfigErrors, TlsCertificate};

/// Server names to values: exact names first, then `*.` wildcards one label deep,
/// then the default. Generic so selection is testable without key material.
#[derive(Debug, Clone)]
pub struct SniTable<T> {
    exact: HashMap<String, T>,
    /// Keyed by what follows `*.`: `example.com` for `*.example.com`.
    wildcard: HashMap<String, T>,
    default: T,
}

impl<T: Clone> SniTable<T> {
    /// `entries` in config order, each with its SNIs. The default is the first
    /// entry without SNIs, else the first entry; `None` when there is no entry.
    /// A name listed twice keeps its first entry (the validator refuses that anyway).
    pub fn new(entries: &[(Vec<String>, T)]) -> Option<Self> {
        let default = entries.iter().find(|(snis, _)| snis.is_empty()).or_else(|| entries.first())?.1.clone();
        let mut exact = HashMap::new();
        let mut wildcard = HashMap::new();
        for (snis, value) in entries {
            for name in snis {
                let name = normalize(name);
                let (map, key) = match name.strip_prefix("*.") {
                    Some(parent) => (&mut wildcard, parent.to_string()),
                    None => (&mut exact, name),
                };
                map.entry(key).or_insert_with(|| value.clone());
            }
        }
        Some(SniTable { exact, wildcard, default })
    }
}

impl<T> SniTable<T> {
    /// The value for a client's SNI (`None` when it sent none).
    pub fn pick(&self, server_name: Option<&str>) -> &T {
        let Some(name) = server_name else {
            return &self.default;
        };
        let name = normalize(name);
        if let Some(value) = self.exact.get(&name) {
            return value;
        }
        // `*.example.com` covers `a.example.com`, not `example.com` nor `a.b.example.com`.
        if let Some((_, parent)) = name.split_once('.') {
            if let Some(value) = self.wildcard.get(parent) {
                return value;
            }
        }
        &self.default
    }
}

/// DNS names are case-insensitive, and a trailing dot names the same host.
fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// Every certificate of one config, loaded and checked.
pub struct CertSet {
    table: SniTable<Arc<CertifiedKey>>,
    /// How many entries, for logs.
    pub count: usize,
}

impl CertSet {
    /// The certificate chain served for `server_name` (for tests and diagnostics).
    pub fn pick(&self, server_name: Option<&str>) -> &Arc<CertifiedKey> {
        self.table.pick(server_name)
    }
}

/// The listener's view of the certificates: one `CertSet` at a time, replaced
/// whole by `install`; handshakes in progress keep the set they loaded.
pub struct SniResolver {
    current: ArcSwap<CertSet>,
}

impl SniResolver {
    pub fn new(set: CertSet) -> Arc<Self> {
        Arc::new(SniResolver { current: ArcSwap::from_pointee(set) })
    }

    pub fn install(&self, set: CertSet) {
        self.current.store(Arc::new(set));
    }
}

// Required by rustls; says nothing about the keys.
impl fmt::Debug for SniResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SniResolver({} certificates)", self.current.load().count)
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load().table.pick(hello.server_name()).clone())
    }
}

/// What the TLS listeners take from the config, swapped together on reload:
/// the server certificates and the verifier of client certificates.
#[derive(Clone)]
pub struct EdgeTls {
    pub certs: Arc<SniResolver>,
    pub clients: Arc<ClientVerifier>,
}

impl EdgeTls {
    pub fn new(certs: CertSet, clients: ClientCa) -> Self {
        EdgeTls { certs: SniResolver::new(certs), clients: ClientVerifier::new(clients) }
    }

    /// Pingora settings for one TLS listener: certificates by SNI, client
    /// certificates asked for as the config says, and the identity of a
    /// verified one read after the handshake; `http2` offers ALPN `h2` first.
    pub fn listener_settings(&self, http2: bool) -> pingora_core::Result<TlsSettings> {
        let identity = IdentityCallback { verifier: self.clients.clone() };
        let mut settings = TlsSettings::with_callbacks(Box::new(identity))?;
        settings.set_cert_resolver(self.certs.clone());
        settings.set_client_cert_verifier(self.clients.clone());
        if http2 {
            settings.enable_h2();
        } else {
            settings.set_alpn(ALPN::H1);
        }
        Ok(settings)
    }
}

/// Loads `server.tls_certificates` (relative paths from the config file's
/// folder). `None` when the config lists none. Errors name the field path and
/// say what is wrong with the file; all entries are checked.
pub fn load_certificates(config: &Config) -> Result<Option<CertSet>, ConfigErrors> {
    let entries = &config.server.tls_certificates;
    if entries.is_empty() {
        return Ok(None);
    }
    let base = config.source.parent().unwrap_or(Path::new(""));
    let mut loaded = Vec::with_capacity(entries.len());
    let mut errors = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        match load_entry(entry, base) {
            Ok(key) => loaded.push((entry.snis.clone(), Arc::new(key))),
            Err(Problem { field, message }) => errors.push((format!("server.tls_certificates[{i}].{field}"), message)),
        }
    }
    if !errors.is_empty() {
        return Err(positioned(&config.source, errors));
    }
    let count = loaded.len();
    match SniTable::new(&loaded) {
        Some(table) => Ok(Some(CertSet { table, count })),
        None => Ok(None),
    }
}

/// The verifier `server.client_ca` and `server.client_verify` ask for: none
/// without a CA; with one, a WebPKI verifier that lets callers without a
/// certificate through unless verification is `required`.
pub fn load_client_verifier(config: &Config) -> Result<ClientCa, ConfigErrors> {
    let Some(ca) = &config.server.client_ca else {
        return Ok(ClientCa(Arc::new(NoClientCerts)));
    };
    let path = config.source.parent().unwrap_or(Path::new("")).join(ca);
    let fail = |message: String| positioned(&config.source, vec![("server.client_ca".to_string(), message)]);
    let mut roots = RootCertStore::empty();
    for cert in read_chain(&path).map_err(|e| fail(e.to_string()))? {
        roots.add(cert).map_err(|e| fail(format!("a certificate in {} is not a usable CA: {e}", path.display())))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
    let builder = match config.server.client_verify {
        ClientVerify::Required => builder,
        ClientVerify::Optional => builder.allow_unauthenticated(),
    };
    let verifier: Arc<dyn ClientCertVerifier> =
        builder.build().map_err(|e| fail(format!("cannot verify client certificates with {}: {e}", path.display())))?;
    Ok(ClientCa(verifier))
}

/// What is wrong with one entry, and in which of its fields.
struct Problem {
    field: &'static str,
    message: String,
}

fn problem(field: &'static str, message: String) -> Problem {
    Problem { field, message }
}

fn load_entry(entry: &TlsCertificate, base: &Path) -> Result<CertifiedKey, Problem> {
    let cert_path = base.join(&entry.cert);
    let key_path = base.join(&entry.key);
    let chain = read_chain(&cert_path).map_err(|m| problem("cert", m))?;
    let key = read_key(&key_path).map_err(|m| problem("key", m))?;
    let signing_key = rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|e| problem("key", format!("unsupported private key in {}: {e}", key_path.display())))?;
    let certified = CertifiedKey::new(chain, signing_key);
    match certified.keys_match() {
        // Unknown: the key type cannot tell its public key; rustls accepts it too.
        Ok(()) | Err(TlsError::InconsistentKeys(InconsistentKeys::Unknown)) => Ok(certified),
        Err(TlsError::InconsistentKeys(InconsistentKeys::KeyMismatch)) => Err(problem(
            "key",
            format!("the key in {} does not match the certificate in {}", key_path.display(), cert_path.display()),
        )),
        Err(e) => Err(problem(
            "cert",
            format!("the first certificate in {} is not a valid X.509 certificate: {e}", cert_path.display()),
        )),
    }
}

fn read_file(path: &PathBuf, what: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {what} file {}: {e}", path.display()))
}

pub(crate) fn read_chain(path: &PathBuf) -> Result<Vec<CertificateDer<'static>>, String> {
    let bytes = read_file(path, "certificate")?;
    let chain = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{} is not valid PEM: {e}", path.display()))?;
    if chain.is_empty() {
        return Err(format!(
            "no certificate in {} (expected PEM `BEGIN CERTIFICATE` blocks, the server's first)",
            path.display()
        ));
    }
    Ok(chain)
}

pub(crate) fn read_key(path: &PathBuf) -> Result<PrivateKeyDer<'static>, String> {
    let bytes = read_file(path, "key")?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| match e {
        pem::Error::NoItemsFound => {
            format!("no private key in {} (expected a PEM PKCS#8, RSA or EC private key)", path.display())
        }
        e => format!("{} is not valid PEM: {e}", path.display()),
    })
}

/// Errors at the line of their field, as the config loader reports its own. The
/// file is read again only for positions; if that fails they have none.
fn positioned(source: &Path, errors: Vec<(String, String)>) -> ConfigErrors {
    let spans = std::fs::read_to_string(source).ok().map(|text| SpanIndex::new(&text));
    ConfigErrors(
        errors
            .into_iter()
            .map(|(path, message)| {
                let (line, column) = spans.as_ref().and_then(|s| s.locate(&path)).unwrap_or((0, 0));
                ConfigError { file: source.to_path_buf(), line, column, path, message }
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn table() -> SniTable<&'static str> {
        let entries = [
            (names(&["api.example.com"]), "api"),
            (names(&["*.example.com", "Other.Test"]), "wild"),
            (Vec::new(), "fallback"),
            (Vec::new(), "second fallback"),
        ];
        SniTable::new(&entries).expect("entries")
    }

    #[test]
    fn exact_name_wins_over_wildcard() {
        assert_eq!(*table().pick(Some("api.example.com")), "api");
        assert_eq!(*table().pick(Some("other.test")), "wild");
    }

    #[test]
    fn wildcard_covers_exactly_one_label() {
        let t = table();
        assert_eq!(*t.pick(Some("www.example.com")), "wild");
        assert_eq!(*t.pick(Some("example.com")), "fallback", "the bare parent is not covered");
        assert_eq!(*t.pick(Some("a.b.example.com")), "fallback", "two labels deep is not covered");
        assert_eq!(*t.pick(Some("wwwexample.com")), "fallback");
    }

    #[test]
    fn no_sni_and_unknown_names_get_the_first_entry_without_snis() {
        let t = table();
        assert_eq!(*t.pick(None), "fallback");
        assert_eq!(*t.pick(Some("unknown.org")), "fallback");
        assert_eq!(*t.pick(Some("")), "fallback");
    }

    #[test]
    fn without_an_sni_less_entry_the_first_entry_is_the_default() {
        let entries = [(names(&["a.test"]), "a"), (names(&["b.test"]), "b")];
        let t = SniTable::new(&entries).expect("entries");
        assert_eq!(*t.pick(None), "a");
        assert_eq!(*t.pick(Some("b.test")), "b");
        assert!(SniTable::<&str>::new(&[]).is_none());
    }

    #[test]
    fn names_are_case_insensitive_and_a_trailing_dot_is_ignored() {
        let t = table();
        assert_eq!(*t.pick(Some("API.Example.COM")), "api");
        assert_eq!(*t.pick(Some("WWW.EXAMPLE.COM")), "wild");
        assert_eq!(*t.pick(Some("api.example.com.")), "api");
        assert_eq!(*t.pick(Some("OTHER.TEST")), "wild", "config names are normalized too");
    }

    #[test]
    fn a_name_listed_twice_keeps_its_first_entry() {
        let entries = [(names(&["a.test"]), "first"), (names(&["A.TEST"]), "second")];
        assert_eq!(*SniTable::new(&entries).expect("entries").pick(Some("a.test")), "first");
    }

    /// Key material made by the `openssl` CLI (scripts/setup.sh --test installs it).
    fn openssl(dir: &Path, args: &[&str]) {
        let status = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap_or_else(|e| panic!("these tests need the openssl CLI: {e}"));
        assert!(status.success(), "openssl {args:?}");
    }

    fn self_signed(dir: &Path, name: &str, key_args: &[&str]) {
        let key = format!("{name}.key");
        let cert = format!("{name}.crt");
        let subject = format!("/CN={name}");
        let mut args = vec!["req", "-x509", "-nodes", "-days", "2", "-subj", &subject, "-keyout", &key, "-out", &cert];
        args.extend_from_slice(key_args);
        openssl(dir, &args);
    }

    fn config_with(dir: &Path, certs: &str) -> Config {
        let text = format!("[server]\ntls_listen = [\"127.0.0.1:8443\"]\ntls_certificates = [\n{certs}\n]\n");
        let path = dir.join("tollgate.toml");
        std::fs::write(&path, &text).expect("write config");
        tollgate_config::load_file(&path).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn loads_rsa_and_ec_keys_relative_to_the_config_and_picks_by_sni() {
        let dir = tempfile::tempdir().expect("tempdir");
        self_signed(dir.path(), "rsa", &["-newkey", "rsa:2048"]);
        self_signed(dir.path(), "ec", &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]);
        let config = config_with(
            dir.path(),
            "{ cert = \"rsa.crt\", key = \"rsa.key\" },\n{ cert = \"ec.crt\", key = \"ec.key\", snis = [\"ec.test\"] }",
        );
        let set = load_certificates(&config).expect("loads").expect("some");
        assert_eq!(set.count, 2);
        let rsa = std::fs::read(dir.path().join("rsa.crt")).expect("read");
        let ec = std::fs::read(dir.path().join("ec.crt")).expect("read");
        let der = |pem: &[u8]| CertificateDer::from_pem_slice(pem).expect("pem");
        assert_eq!(set.pick(None).cert[0], der(&rsa));
        assert_eq!(set.pick(Some("EC.test")).cert[0], der(&ec));
    }

    #[test]
    fn bad_files_are_named_by_field_and_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        self_signed(dir.path(), "one", &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]);
        self_signed(dir.path(), "two", &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]);
        std::fs::write(dir.path().join("empty.pem"), "just text\n").expect("write");
        let config = config_with(
            dir.path(),
            "{ cert = \"one.crt\", key = \"two.key\" },\n\
             { cert = \"missing.crt\", key = \"one.key\" },\n\
             { cert = \"empty.pem\", key = \"one.key\" },\n\
             { cert = \"one.crt\", key = \"one.crt\" }",
        );
        let Err(errors) = load_certificates(&config) else {
            panic!("bad files must not load");
        };
        let got: Vec<(String, usize)> = errors.0.iter().map(|e| (e.path.clone(), e.line)).collect();
        assert_eq!(
            got,
            [
                ("server.tls_certificates[0].key".to_string(), 4),
                ("server.tls_certificates[1].cert".to_string(), 5),
                ("server.tls_certificates[2].cert".to_string(), 6),
                ("server.tls_certificates[3].key".to_string(), 7),
            ],
            "{errors}"
        );
        let messages: Vec<&str> = errors.0.iter().map(|e| e.message.as_str()).collect();
        assert!(messages[0].contains("does not match the certificate"), "{}", messages[0]);
        assert!(messages[1].starts_with("cannot read certificate file"), "{}", messages[1]);
        assert!(messages[2].starts_with("no certificate in"), "{}", messages[2]);
        assert!(messages[3].starts_with("no private key in"), "{}", messages[3]);
    }
}
