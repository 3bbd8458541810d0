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
    assert_eq!(c.log_format, LogFormat::Auto);
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

#[test]
fn llm_keys_are_collected_with_secrets_from_files_and_hidden_in_debug() {
    let c = Config::from_sources(None, &env(&[])).unwrap();
    assert_eq!(c.llm.provider(), "none");
    assert!(!c.llm.is_enabled());

    let err = Config::from_sources(Some(("b.toml", "[llm]\napi_key = \"sk-x\"\n")), &env(&[])).unwrap_err();
    assert!(matches!(err, ConfigError::SecretInFile { .. }), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let key_path = dir.path().join("key");
    std::fs::write(&key_path, "sk-from-file\n").unwrap();
    let fb_path = dir.path().join("fb");
    std::fs::write(&fb_path, "fb-secret\n").unwrap();
    let key_path = key_path.to_str().unwrap().to_owned();
    let fb_path = fb_path.to_str().unwrap().to_owned();
    let source = Source::from_pairs([
        ("BEACON_LLM_API_KEY_FILE", key_path.as_str()),
        ("BEACON_LLM_FALLBACKS", "anthropic"),
        ("BEACON_LLM_FALLBACK_1_API_KEY_FILE", fb_path.as_str()),
        ("BEACON_LLM_FALLBACK_1_BASE_URL", "http://127.0.0.1:9"),
        ("BEACON_LLM_FALLBACK_X_BASE_URL", "ignored"),
        ("BEACON_LLM_FALLBACK_1_BASE_URL_FILE", "/nonexistent"),
    ]);
    let file = "[llm]\nprovider = \"openai\"\nmodel = \"gpt-4.1-mini\"\n";
    let c = Config::from_sources(Some(("beacon.toml", file)), &source).unwrap();
    assert_eq!(c.llm.provider(), "openai");
    assert_eq!(c.llm.model.as_deref(), Some("gpt-4.1-mini"));
    assert_eq!(c.llm.api_key.as_ref().map(Secret::expose), Some("sk-from-file"));
    assert_eq!(c.llm.fallbacks.len(), 1);
    let fallback = &c.llm.fallbacks[0];
    assert_eq!((fallback.provider.as_str(), fallback.model.as_deref()), ("anthropic", None));
    assert_eq!(fallback.api_key.as_ref().map(Secret::expose), Some("fb-secret"));
    assert_eq!(fallback.base_url.as_deref(), Some("http://127.0.0.1:9"));
    let err = Config::from_sources(None, &env(&[("BEACON_LLM_TIMEOUT", "soon")])).unwrap_err();
    assert!(err.to_string().contains("BEACON_LLM_TIMEOUT"), "{err}");
    let err = Config::from_sources(None, &env(&[("BEACON_LLM_MAX_RETRIES", "-1")])).unwrap_err();
    assert!(err.to_string().contains("BEACON_LLM_MAX_RETRIES"), "{err}");
    let only = LlmSettings::from_source(&env(&[("BEACON_LLM_FALLBACKS", "openai-compatible:llama3.1:8b")])).unwrap();
    assert_eq!(only.fallbacks[0].model.as_deref(), Some("llama3.1:8b"));
    let debug = format!("{c:?}");
    assert!(!debug.contains("sk-from-file") && !debug.contains("fb-secret"), "{debug}");
}

#[test]
fn kb_credentials_are_secrets() {
    let c = Config::from_sources(None, &env(&[("BEACON_NOTION_TOKEN", "secret_n")])).unwrap();
    assert_eq!(c.kb_credentials.notion_token.as_ref().map(Secret::expose), Some("secret_n"));
    assert!(c.kb_credentials.google_service_account.is_none());
    let err = Config::from_sources(Some(("b.toml", "[kb]\nnotion_token = \"x\"\n")), &env(&[])).unwrap_err();
    assert!(matches!(err, ConfigError::SecretInFile { .. }), "{err}");
}

#[test]
fn s3_transcripts_need_their_keys() {
    assert!(Config::from_sources(None, &env(&[])).unwrap().transcripts_s3.is_none());
    let err = Config::from_sources(None, &env(&[("BEACON_TRANSCRIPTS_S3_BUCKET", "t")])).unwrap_err();
    assert!(err.to_string().contains("BEACON_TRANSCRIPTS_S3_ACCESS_KEY_ID"), "{err}");
    let c = Config::from_sources(
        None,
        &env(&[
            ("BEACON_TRANSCRIPTS_S3_BUCKET", "t"),
            ("BEACON_TRANSCRIPTS_S3_ENDPOINT", "http://127.0.0.1:9000"),
            ("BEACON_TRANSCRIPTS_S3_ACCESS_KEY_ID", "id"),
            ("BEACON_TRANSCRIPTS_S3_SECRET_ACCESS_KEY", "secret"),
        ]),
    )
    .unwrap();
    let s3 = c.transcripts_s3.unwrap();
    assert_eq!((s3.bucket.as_str(), s3.region.as_str()), ("t", "us-east-1"));
    assert_eq!(s3.secret_access_key.expose(), "secret");
    assert!(!format!("{s3:?}").contains("secret\""), "secrets are redacted");
}

#[test]
fn embed_settings_parse_and_validate() {
    let c = Config::from_sources(None, &env(&[])).unwrap();
    assert_eq!(c.embed.provider, crate::EmbedProvider::Local);
    assert_eq!(c.embed.hub_url.as_deref(), Some("https://huggingface.co"));
    assert_eq!(c.embed.model_repo, "sentence-transformers/all-MiniLM-L6-v2");
    assert_eq!(c.embed.query_prefix, None);
    let c = Config::from_sources(
        None,
        &env(&[
            ("BEACON_EMBED_PROVIDER", "LLM"),
            ("BEACON_EMBED_HUB_URL", "off"),
            ("BEACON_EMBED_POOLING", "cls"),
            ("BEACON_EMBED_PRECISION", "INT8"),
            ("BEACON_EMBED_QUERY_PREFIX", "none"),
            ("BEACON_EMBED_MODEL_REPO", "BAAI/bge-small-en-v1.5"),
        ]),
    )
    .unwrap();
    assert_eq!(c.embed.provider, crate::EmbedProvider::Llm);
    assert_eq!(c.embed.hub_url, None);
    assert_eq!(c.embed.pooling.as_deref(), Some("cls"));
    assert_eq!(c.embed.precision.as_deref(), Some("int8"));
    assert_eq!(c.embed.query_prefix.as_deref(), Some(""));
    assert_eq!(c.embed.model_repo, "BAAI/bge-small-en-v1.5");
    for (key, bad) in [
        ("BEACON_EMBED_PROVIDER", "openai"),
        ("BEACON_EMBED_POOLING", "max"),
        ("BEACON_EMBED_PRECISION", "fp16"),
        ("BEACON_EMBED_HUB_URL", "ftp://hub"),
        ("BEACON_EMBED_MODEL_REPO", "../etc"),
    ] {
        let e = Config::from_sources(None, &env(&[(key, bad)])).unwrap_err().to_string();
        assert!(e.contains(key), "{e}");
    }
}

/// `beacon.toml.example` as the keys describe it: every key that may live in a file, grouped by
/// TOML table, commented out. Secrets are left out (they are refused in the file).
fn toml_example() -> String {
    let mut out = String::from(
        "# beacon.toml: every setting that may live in a file (`beacon --config PATH`; ./beacon.toml is\n\
         # read when present). Environment variables (BEACON_…, also from .env) win over this file.\n\
         # Secrets (the bot token, API keys, the Notion token, the Google key, S3 keys) are refused\n\
         # here: give them in the environment or as <VAR>_FILE paths. Every line is commented out;\n\
         # the default applies until you set it. Generated from the keys (see .env.example too).\n",
    );
    let mut tables: Vec<&str> = Vec::new();
    for key in KEYS.iter().filter(|k| k.kind != KeyKind::Secret) {
        let table = key.toml.split_once('.').map(|(t, _)| t).unwrap_or("");
        if !tables.contains(&table) {
            tables.push(table);
        }
    }
    tables.sort_by_key(|t| !t.is_empty());
    for table in tables {
        out.push('\n');
        if !table.is_empty() {
            out.push_str(&format!("[{table}]\n"));
        }
        for key in KEYS.iter().filter(|k| k.kind != KeyKind::Secret) {
            let (t, leaf) = key.toml.split_once('.').unwrap_or(("", key.toml));
            if t == table {
                out.push_str(&format!("# {} ({})\n# {leaf} = \"\"\n", key.help, key.name));
            }
        }
    }
    out
}

#[test]
fn toml_example_lists_every_file_setting() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../beacon.toml.example");
    let expected = toml_example();
    if std::env::var_os("BEACON_BLESS").is_some() {
        std::fs::write(path, &expected).unwrap();
    }
    let body = std::fs::read_to_string(path).unwrap();
    assert_eq!(body, expected, "beacon.toml.example is out of date: run this test with BEACON_BLESS=1");
    // Uncommented, it is a valid configuration file.
    let active: String = body
        .lines()
        .filter_map(|l| if l.starts_with("# ") && l.contains(" = \"\"") { None } else { Some(format!("{l}\n")) })
        .collect();
    Config::from_sources(Some(("beacon.toml.example", &active)), &env(&[])).unwrap();
}

#[test]
fn cost_control_keys_default_to_a_dollar_a_day_and_no_extra_models() {
    let c = Config::from_sources(None, &env(&[])).unwrap();
    assert!(c.llm.guild_models.is_empty());
    assert_eq!(c.llm.guild_daily_budget_micros, Some(1_000_000));

    let c = Config::from_sources(
        None,
        &env(&[
            ("BEACON_LLM_GUILD_MODELS", " gpt-4.1-nano, ,gpt-4.1-mini "),
            ("BEACON_LLM_GUILD_DAILY_BUDGET", "$2.5"),
        ]),
    )
    .unwrap();
    assert_eq!(c.llm.guild_models, ["gpt-4.1-nano", "gpt-4.1-mini"]);
    assert_eq!(c.llm.guild_daily_budget_micros, Some(2_500_000));
    let c = Config::from_sources(None, &env(&[("BEACON_LLM_GUILD_DAILY_BUDGET", "None")])).unwrap();
    assert_eq!(c.llm.guild_daily_budget_micros, None);
    for bad in ["-1", "1,50", "1.2345678", "ten", "."] {
        let err = Config::from_sources(None, &env(&[("BEACON_LLM_GUILD_DAILY_BUDGET", bad)])).unwrap_err();
        assert!(err.to_string().contains("BEACON_LLM_GUILD_DAILY_BUDGET"), "{bad}: {err}");
    }
}

#[test]
fn usd_amounts_parse_exactly() {
    assert_eq!(crate::parse_usd("2"), Ok(2_000_000));
    assert_eq!(crate::parse_usd(".5"), Ok(500_000));
    assert_eq!(crate::parse_usd("$ 0.000001"), Ok(1));
    assert_eq!(crate::parse_usd("3."), Ok(3_000_000));
    assert!(crate::parse_usd("").is_err());
    assert!(crate::parse_usd("1e3").is_err());
    assert!(crate::parse_usd("99999999999999999999").is_err());
}

#[test]
fn alert_webhook_is_a_discord_webhook_url_and_its_token_stays_secret() {
    let c = Config::from_sources(
        None,
        &env(&[("BEACON_ALERT_WEBHOOK_URL", "https://discord.com/api/webhooks/123456789/tok-EN_1?wait=true")]),
    )
    .unwrap();
    let hook = c.alerts.webhook_url.as_ref().unwrap();
    assert_eq!((hook.id, hook.token.expose()), (123456789, "tok-EN_1"));
    assert!(!format!("{c:?}").contains("tok-EN_1"), "the token is never printed");
    let v10 = Config::from_sources(
        None,
        &env(&[("BEACON_ALERT_WEBHOOK_URL", "http://127.0.0.1:9000/api/v10/webhooks/42/abc")]),
    )
    .unwrap();
    assert_eq!(v10.alerts.webhook_url.unwrap().id, 42);
    for bad in ["discord.com/api/webhooks/1/x", "https://discord.com/api/webhooks/abc/x", "https://example.com/hook"] {
        let err = Config::from_sources(None, &env(&[("BEACON_ALERT_WEBHOOK_URL", bad)])).unwrap_err().to_string();
        assert!(err.contains("BEACON_ALERT_WEBHOOK_URL"), "{bad}: {err}");
    }
    let defaults = Config::from_sources(None, &env(&[])).unwrap().alerts;
    assert_eq!(
        (defaults.handler_failures, defaults.gateway_after, defaults.min_interval),
        (5, std::time::Duration::from_secs(120), std::time::Duration::from_secs(900))
    );
}
