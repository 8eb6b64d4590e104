//! `[[vaults]]`: typing, meaning checks, reference syntax, and references
//! resolved through each kind of vault entity.

use std::cell::RefCell;
use std::path::Path;

use crate::vault::{pick_key, prefixed_env_name, RemoteSecrets, SecretAddress};
use crate::vaults::{HcvAuthMethod, KvVersion, Vault, VaultConfig, VaultKind};
use crate::{load_str, load_str_with, ConfigErrors, PluginConfig};

/// A route and an ai-proxy whose provider header holds `header`, after `vaults`.
fn file(vaults: &str, header: &str) -> String {
    format!(
        r#"{vaults}

[[services]]
name = "llm"

[[routes]]
name = "chat"
service = "llm"
paths = ["/chat"]

[[plugins]]
name = "ai-proxy"
service = "llm"
[plugins.config]
auth = {{ header_name = "Authorization", header_value = "{header}" }}
model = {{ provider = "openai", name = "gpt-4o", options = {{ upstream_url = "http://127.0.0.1:9/v1/chat/completions" }} }}
"#
    )
}

fn env(name: &str) -> Option<String> {
    match name {
        "AI_OPENAI_TOKEN" => Some("sk-prefixed".into()),
        "AI_OPENAI_TOKEN_PREVIOUS" => Some("sk-previous".into()),
        "OPENAI_TOKEN" => Some("sk-unprefixed".into()),
        "JSON_SECRET" => Some(r#"{"token": "sk-json", "n": 3}"#.into()),
        "VAULT_TOKEN" => Some("hvs.root".into()),
        _ => None,
    }
}

fn header(config: &crate::Config) -> String {
    let ai = config.plugins.iter().find_map(|p| match &p.config {
        PluginConfig::AiProxy(c) => c.auth.as_ref().and_then(|a| a.header_value.clone()),
        _ => None,
    });
    ai.unwrap_or_default()
}

fn errors(text: &str) -> Vec<(String, String)> {
    let ConfigErrors(errors) = load_str(text, Path::new("t.toml"), &env).expect_err("errors");
    errors.into_iter().map(|e| (e.path, e.message)).collect()
}

/// A remote vault answering from a table, noting what it was asked.
struct Remote {
    asked: RefCell<Vec<(Vault, SecretAddress)>>,
}

impl RemoteSecrets for Remote {
    fn fetch(&self, vault: &Vault, address: &SecretAddress) -> Result<String, String> {
        self.asked.borrow_mut().push((vault.clone(), address.clone()));
        match address.resource.as_str() {
            "llm/openai" => Ok(r#"{"token": "sk-from-vault"}"#.into()),
            other => Err(format!("GET /v1/secret/data/{other}: secret not found")),
        }
    }
}

#[test]
fn references_parse_as_kong_does() {
    let parse = |s: &str| SecretAddress::parse(s);
    let address = |resource: &str, key: Option<&str>, version| SecretAddress {
        resource: resource.into(),
        key: key.map(Into::into),
        version,
    };
    assert_eq!(parse("openai-token"), Ok(address("openai-token", None, None)));
    assert_eq!(parse("llm/openai/token"), Ok(address("llm/openai", Some("token"), None)));
    assert_eq!(parse("openai/"), Ok(address("openai", None, None)), "a trailing slash: no key");
    assert_eq!(parse("openai/token?version=2"), Ok(address("openai", Some("token"), Some(2))));
    assert!(parse("openai?version=0").is_err());
    assert!(parse("openai?ttl=3").expect_err("unknown").contains("only `version`"));
    assert!(parse("").is_err());
}

#[test]
fn env_names_follow_kongs_rule() {
    let a = SecretAddress::parse("openai-token").expect("address");
    assert_eq!(prefixed_env_name(Some("AI_"), &a), "AI_OPENAI_TOKEN");
    assert_eq!(prefixed_env_name(Some("ai-"), &a), "AI_OPENAI_TOKEN", "the prefix is converted too");
    assert_eq!(prefixed_env_name(None, &a), "OPENAI_TOKEN");
    let previous = SecretAddress::parse("openai-token?version=2").expect("address");
    assert_eq!(prefixed_env_name(Some("AI_"), &previous), "AI_OPENAI_TOKEN_PREVIOUS");
    assert_eq!(pick_key(r#"{"a": "x", "n": 3, "o": {}}"#, "n").as_deref(), Some("3"));
    assert_eq!(pick_key(r#"{"o": {}}"#, "o"), None);
    assert_eq!(pick_key("not json", "a"), None);
}

#[test]
fn the_seed_line_reads_through_an_env_vault_with_a_prefix() {
    let vaults =
        "[[vaults]]\nname = \"env\"\nprefix = \"ai\"\ndescription = \"provider keys\"\nconfig.prefix = \"AI_\"";
    let config = load_str(&file(vaults, "Bearer {vault://ai/openai-token}"), Path::new("t.toml"), &env).expect("loads");
    assert_eq!(header(&config), "Bearer sk-prefixed");
    assert_eq!(config.vaults.len(), 1);
    assert_eq!((config.vaults[0].name, config.vaults[0].prefix.as_str()), (VaultKind::Env, "ai"));
    let previous = load_str(&file(vaults, "{vault://ai/openai-token?version=2}"), Path::new("t.toml"), &env);
    assert_eq!(header(&previous.expect("loads")), "sk-previous");
    let plain = "[[vaults]]\nname = \"env\"\nprefix = \"ai\"";
    let json = load_str(&file(plain, "{vault://ai/json-secret/token}"), Path::new("t.toml"), &env);
    assert_eq!(header(&json.expect("loads")), "sk-json");
}

#[test]
fn hcv_references_go_to_the_remote_with_the_vaults_own_references_resolved() {
    let vaults = "[[vaults]]\nname = \"hcv\"\nprefix = \"hv\"\n[vaults.config]\nkv = \"v2\"\ntoken = \"{vault://env/vault-token}\"\nttl = 60";
    let remote = Remote { asked: RefCell::default() };
    let config =
        load_str_with(&file(vaults, "Bearer {vault://hv/llm/openai/token}"), Path::new("t.toml"), &env, &remote)
            .expect("loads");
    assert_eq!(header(&config), "Bearer sk-from-vault");
    let asked = remote.asked.borrow();
    let (vault, address) = &asked[0];
    let VaultConfig::Hcv(c) = &vault.config else { panic!("hcv") };
    assert_eq!((c.token.as_deref(), c.kv, c.auth_method), (Some("hvs.root"), KvVersion::V2, HcvAuthMethod::Token));
    assert_eq!((c.host.as_str(), c.port, c.mount.as_str()), ("127.0.0.1", 8200, "secret"), "Kong's defaults");
    assert_eq!(vault.ttls().ttl, 60);
    assert_eq!(vault.ttls().resurrect_ttl, crate::vaults::DEFAULT_RESURRECT_TTL);
    assert_eq!(address.key.as_deref(), Some("token"));
    assert!(!format!("{c:?}").contains("hvs.root"), "Debug leaves the token out");
    drop(asked);

    let missing = load_str_with(&file(vaults, "{vault://hv/nope/token}"), Path::new("t.toml"), &env, &remote);
    let ConfigErrors(e) = missing.expect_err("not found");
    assert_eq!(e[0].path, "plugins[0].config.auth.header_value");
    assert!(e[0].message.contains("secret not found"), "{}", e[0].message);
}

#[test]
fn bad_vaults_are_reported_at_their_fields() {
    let cases = [
        ("[[vaults]]\nname = \"azure\"\nprefix = \"a\"\nconfig.vault_uri = \"x\"", "vaults[0].config.vault_uri", "https URL"),
        (
            "[[vaults]]\nname = \"azure\"\nprefix = \"a\"\nconfig = { vault_uri = \"https://v.vault.azure.net\", type = \"keys\" }",
            "vaults[0].config.type",
            "only `secrets`",
        ),
        ("[[vaults]]\nname = \"gcp\"\nprefix = \"a\"", "vaults[0].config", "missing field `project_id`"),
        ("[[vaults]]\nname = \"gcp\"\nprefix = \"a\"\nconfig.project_id = \"a/b\"", "vaults[0].config.project_id", "project id"),
        ("[[vaults]]\nname = \"aws\"\nprefix = \"a\"\nconfig.endpoint_url = \"ftp://x\"", "vaults[0].config.endpoint_url", "URL"),
        ("[[vaults]]\nname = \"vault9\"\nprefix = \"a\"", "vaults[0].name", "unknown variant"),
        ("[[vaults]]\nname = \"env\"\nprefix = \"file\"", "vaults[0].prefix", "reserved"),
        ("[[vaults]]\nname = \"env\"\nprefix = \"Bad_Prefix\"", "vaults[0].prefix", "lower-case"),
        ("[[vaults]]\nname = \"env\"\nprefix = \"a\"\nconfig.bogus = 1", "vaults[0].config.bogus", "unknown field"),
        ("[[vaults]]\nname = \"env\"\nprefix = \"a\"\nconfig.prefix = \"A B\"", "vaults[0].config.prefix", "letters"),
        ("[[vaults]]\nname = \"hcv\"\nprefix = \"a\"", "vaults[0].config.token", "required"),
        ("[[vaults]]\nname = \"hcv\"\nprefix = \"a\"\nconfig.kv = \"v3\"", "vaults[0].config.kv", "unknown variant"),
        (
            "[[vaults]]\nname = \"hcv\"\nprefix = \"a\"\nconfig = { auth_method = \"kubernetes\" }",
            "vaults[0].config.kube_role",
            "required",
        ),
        (
            "[[vaults]]\nname = \"hcv\"\nprefix = \"a\"\nconfig = { auth_method = \"approle\", approle_role_id = \"r\" }",
            "vaults[0].config.approle_secret_id",
            "approle_secret_id_file",
        ),
        (
            "[[vaults]]\nname = \"hcv\"\nprefix = \"a\"\nconfig = { token = \"{vault://env/unset-var}\" }",
            "vaults[0].config.token",
            "UNSET_VAR is not set",
        ),
        ("[vaults]\nname = \"env\"", "vaults", "array of tables"),
        ("[[vaults]]\nname = \"hcv\"\nprefix = \"a\"\nconfig = { token = \"t\", ttl = 31536001 }", "vaults[0].config.ttl", "at most 31536000 seconds"),
        ("[[vaults]]\nname = \"env\"\nprefix = \"a\"\nconfig.neg_ttl = 99999999999", "vaults[0].config.neg_ttl", "at most 31536000"),
        (
            "[[vaults]]\nname = \"gcp\"\nprefix = \"a\"\nconfig = { project_id = \"p\", resurrect_ttl = 100000001 }",
            "vaults[0].config.resurrect_ttl",
            "at most 100000000 seconds",
        ),
        // Plain http only to loopback: a token or a secret would cross the network in clear.
        (
            "[[vaults]]\nname = \"azure\"\nprefix = \"a\"\nconfig.vault_uri = \"http://v.vault.azure.net\"",
            "vaults[0].config.vault_uri",
            "loopback",
        ),
        (
            "[[vaults]]\nname = \"gcp\"\nprefix = \"a\"\nconfig = { project_id = \"p\", endpoint_url = \"http://sm.example\" }",
            "vaults[0].config.endpoint_url",
            "loopback",
        ),
        (
            "[[vaults]]\nname = \"aws\"\nprefix = \"a\"\nconfig.endpoint_url = \"http://sm.example\"",
            "vaults[0].config.endpoint_url",
            "loopback",
        ),
        (
            "[[vaults]]\nname = \"hcv\"\nprefix = \"a\"\nconfig = { host = \"vault.example\", token = \"t\" }",
            "vaults[0].config.protocol",
            "must be `https`",
        ),
    ];
    for (vaults, path, message) in cases {
        let found = errors(&file(vaults, "x"));
        assert!(found.iter().any(|(p, m)| p == path && m.contains(message)), "{vaults}: {found:?}");
    }
    for fine in [
        "[[vaults]]\nname = \"hcv\"\nprefix = \"a\"\nconfig = { host = \"::1\", token = \"t\" }",
        "[[vaults]]\nname = \"hcv\"\nprefix = \"a\"\nconfig = { host = \"vault.example\", protocol = \"https\", token = \"t\" }",
        "[[vaults]]\nname = \"gcp\"\nprefix = \"a\"\nconfig = { project_id = \"p\", endpoint_url = \"http://localhost:9\" }",
    ] {
        assert!(load_str(&file(fine, "x"), Path::new("t.toml"), &env).is_ok(), "{fine}");
    }
    let twice = "[[vaults]]\nname = \"env\"\nprefix = \"ai\"\n[[vaults]]\nname = \"env\"\nprefix = \"ai\"";
    assert!(errors(&file(twice, "x"))
        .iter()
        .any(|(p, m)| p == "vaults[1].prefix" && m.contains("already used at line 3")));
    let unknown = errors(&file("", "{vault://nope/x}"));
    assert!(unknown[0].1.contains("no [[vaults]] entry has prefix `nope`"), "{unknown:?}");
}

#[test]
fn vaults_with_errors_are_never_contacted() {
    let hcv = |prefix: &str, host: &str| {
        format!(
            "[[vaults]]\nname = \"hcv\"\nprefix = \"{prefix}\"\n[vaults.config]\nhost = \"{host}\"\ntoken = \"t\"\n"
        )
    };
    let load = |vaults: &str, header: &str| {
        let remote = Remote { asked: RefCell::default() };
        let result = load_str_with(&file(vaults, header), Path::new("t.toml"), &env, &remote);
        let ConfigErrors(e) = result.expect_err("a bad vault entry");
        (e.into_iter().map(|e| (e.path, e.message)).collect::<Vec<_>>(), remote.asked.into_inner())
    };
    // A reserved prefix: the built-in `env` keeps it.
    let (e, asked) = load(&hcv("env", "evil.example"), "{vault://env/llm/openai/token}");
    assert!(asked.is_empty(), "{asked:?}");
    assert!(e.iter().any(|(p, m)| p == "vaults[0].prefix" && m.contains("reserved")), "{e:?}");
    assert!(e.iter().any(|(_, m)| m.contains("not a valid environment variable name")), "{e:?}");
    // A bad host.
    let (e, asked) = load(&hcv("hv", "evil.example/x"), "{vault://hv/llm/openai/token}");
    assert!(asked.is_empty(), "{asked:?}");
    assert!(e.iter().any(|(p, m)| p == "plugins[0].config.auth.header_value" && m.contains("has errors")), "{e:?}");
    // A duplicate prefix: the second entry is never asked.
    let vaults = format!("{}{}", hcv("hv", "good.example"), hcv("hv", "evil.example"));
    let (e, asked) = load(&vaults, "{vault://hv/llm/openai/token}");
    assert!(e.iter().any(|(p, m)| p == "vaults[1].prefix" && m.contains("already used")), "{e:?}");
    let hosts: Vec<String> = asked
        .iter()
        .map(|(v, _)| match &v.config {
            VaultConfig::Hcv(c) => c.host.clone(),
            _ => String::new(),
        })
        .collect();
    assert!(hosts.iter().all(|h| h == "good.example"), "{hosts:?}");
}
