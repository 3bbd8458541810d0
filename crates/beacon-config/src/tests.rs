use super::*;

fn env(pairs: &[(&'static str, &'static str)]) -> Source {
    Source::from_pairs(pairs.iter().copied())
}

#[test]
fn defaults_are_the_embedded_setup() {
    let c = Config::from_sources(None, &env(&[])).unwrap();
    assert_eq!(c.http_addr, "127.0.0.1:8080".parse().unwrap());
    assert_eq!(c.data_dir, PathBuf::from("data"));
    assert_eq!(c.database_url.expose(), "sqlite://data/beacon.db");
    assert!(c.redis_url.is_none());
    assert!(c.discord.token.is_none());
    assert_eq!(c.discord.api_url, "https://discord.com");
    assert_eq!(c.log_format, LogFormat::Json);
}

#[test]
fn environment_wins_over_file() {
    let file = "http_addr = \"0.0.0.0:1\"\n[discord]\napi_url = \"http://file:1\"\n";
    let c = Config::from_sources(Some(("beacon.toml", file)), &env(&[("BEACON_HTTP_ADDR", "127.0.0.1:9999")])).unwrap();
    assert_eq!(c.http_addr.port(), 9999);
    assert_eq!(c.discord.api_url, "http://file:1");
}

#[test]
fn bad_value_names_the_key_and_origin() {
    let err = Config::from_sources(None, &env(&[("BEACON_HTTP_ADDR", "not-an-addr")])).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("BEACON_HTTP_ADDR"), "{msg}");
    assert!(msg.contains("environment"), "{msg}");

    let err = Config::from_sources(Some(("x.toml", "[discord]\npublic_key = \"zz\"\n")), &env(&[])).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("BEACON_DISCORD_PUBLIC_KEY") && msg.contains("x.toml"), "{msg}");
}

#[test]
fn secrets_are_refused_in_the_file_and_read_from_file_vars() {
    let err = Config::from_sources(Some(("b.toml", "[discord]\ntoken = \"abc\"\n")), &env(&[])).unwrap_err();
    assert!(matches!(err, ConfigError::SecretInFile { .. }), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("token");
    std::fs::write(&path, "sekrit\n").unwrap();
    let path = path.to_str().unwrap().to_owned();
    let source = Source::from_pairs([("BEACON_DISCORD_TOKEN_FILE", path.as_str())]);
    let c = Config::from_sources(None, &source).unwrap();
    assert_eq!(c.discord.token.as_ref().map(Secret::expose), Some("sekrit"));
    assert_eq!(format!("{:?}", c.discord.token), "Some(Secret(***))");
}

#[test]
fn unknown_file_keys_are_errors() {
    let err = Config::from_sources(Some(("b.toml", "htp_addr = \"x\"\n")), &env(&[])).unwrap_err();
    assert!(err.to_string().contains("htp_addr"));
}

#[test]
fn database_and_redis_urls_are_checked_and_redacted() {
    let c = Config::from_sources(
        None,
        &env(&[
            ("BEACON_DATABASE_URL", "postgres://beacon:hunter2@db:5432/beacon"),
            ("BEACON_REDIS_URL", "redis://127.0.0.1:6379"),
        ]),
    )
    .unwrap();
    assert_eq!(c.database_url.redacted_url(), "postgres://beacon:***@db:5432/beacon");
    assert!(Config::from_sources(None, &env(&[("BEACON_DATABASE_URL", "mysql://x")])).is_err());
    assert!(Config::from_sources(None, &env(&[("BEACON_REDIS_URL", "http://x")])).is_err());
}

#[test]
fn durations_parse_with_units() {
    let c = Config::from_sources(None, &env(&[("BEACON_GUILD_RETENTION", "7d")])).unwrap();
    assert_eq!(c.guild_retention, Duration::from_secs(7 * 86_400));
    assert!(Config::from_sources(None, &env(&[("BEACON_SHUTDOWN_GRACE", "soon")])).is_err());
}

#[test]
fn env_example_documents_every_key() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../.env.example");
    let body = std::fs::read_to_string(path).unwrap();
    for key in KEYS {
        assert!(body.contains(&format!("{}=", key.name)), "{} missing from .env.example", key.name);
    }
}

proptest::proptest! {
    #[test]
    fn arbitrary_values_never_panic(value in "\\PC{0,40}") {
        for key in KEYS {
            let _ = Config::from_sources(None, &Source::from_pairs([(key.name, value.as_str())]));
        }
    }
}
