//! The config file: a full valid example resolved into the core's Policy and
//! Mapping, and the error messages an operator sees for the usual mistakes
//! — each names the file, the key path, its line:column and how to fix it.

use std::path::Path;

use muster::config::{Config, ConfigError, PluginRef, SecretSource};
use muster::schedule::Schedule;
use muster_core::mapping::Rule;
use muster_core::{
    ActionKind, Allowed, CorrelationKey, Field, FieldRef, FieldSet, FieldValue, Guard,
    ManagerMatch, Policy, Threshold,
};

const FULL: &str = r#"
[tenant]
name = "acme"
timezone = "Europe/Paris"
state = "muster.db"
cache = ".muster-cache"

[connections.lucca]
plugin = "lucca"
settings = { base_url = "http://127.0.0.1:1234", page_size = 100, strict = true }
secret = { env = "LUCCA_API_KEY" }
hosts = ["https://acme.ilucca.net"]
allow_loopback = true

[connections.leapsome]
plugin = "leapsome"
secret = { file = "secrets/leapsome" }
max_in_flight = 4

[connections.flatchr]
plugin = "./plugins/flatchr.wasm"
secret = { env = "FLATCHR_TOKEN" }
hosts = ["https://careers.flatchr.io"]

[flows.lucca-to-leapsome]
source = "lucca"
target = "leapsome"
schedule = "daily 02:00"
actions = ["create", "link", "update", "deactivate", "reactivate"]
fields = ["given_name", "family_name", "work_email", "manager_id", "custom:e_formation"]
row_keys = { e_formation = "e_title" }
correlation = ["employee_number", "work_email"]
options = { invite_on_create = true, reactivate = true, pre_start_days = 3, sync_groups = false, manager_match = "work_email" }
guard = { max_deactivate = 25, max_deactivate_ratio = 0.10, max_create = 200 }
required_on_create = ["work_email", "given_name"]

[flows.flatchr-to-lucca]
source = "flatchr"
target = "lucca"
actions = ["create"]
mapping = [
  { coalesce = { field = "work_email", from = ["work_email", "personal_email"] } },
  { rename = { from = "custom:hired_on", to = "start_date" } },
  { default = { field = "legal_entity_id", value = "1" } },
  { template = { field = "login", pattern = "{given_name|initial}{family_name}|login", keep_existing = true } },
  { value_map = { from = "custom:establishment", to = "legal_entity_id", values = { Paris = "12", Lyon = "13" }, fallback = "1" } },
]
webhook = { secret = { env = "FLATCHR_WEBHOOK_SECRET" }, id_field = "candidate.id", require = ["event", "data.column.id"] }
options = { login_taken = "conflict" }
guard = false
"#;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(
        text,
        Path::new("/etc/muster/acme.toml"),
        Path::new("/etc/muster"),
    )
}

/// The error text of `text`, which must not parse.
fn err(text: &str) -> String {
    match parse(text) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(e) => e.to_string(),
    }
}

fn with_flow(flow_body: &str) -> String {
    format!(
        "[tenant]\nname = \"acme\"\ntimezone = \"UTC\"\nstate = \"s.db\"\n\n\
         [connections.a]\nplugin = \"lucca\"\n\n[connections.b]\nplugin = \"leapsome\"\n\n\
         [flows.f]\nsource = \"a\"\ntarget = \"b\"\n{flow_body}"
    )
}

#[test]
fn full_example_resolves_into_the_core_policy_and_mapping() {
    let c = parse(FULL).unwrap();
    assert_eq!(c.tenant.name, "acme");
    assert_eq!(c.tenant.timezone_name, "Europe/Paris");
    assert_eq!(c.tenant.timezone.iana_name(), Some("Europe/Paris"));
    assert_eq!(c.tenant.state, Path::new("/etc/muster/muster.db"));
    assert_eq!(
        c.tenant.cache.as_deref(),
        Some(Path::new("/etc/muster/.muster-cache"))
    );

    let lucca = &c.connections["lucca"];
    assert_eq!(lucca.plugin, PluginRef::Builtin("lucca".into()));
    assert!(
        lucca
            .plugin
            .wasm_path()
            .ends_with("muster_plugin_lucca.wasm")
    );
    assert_eq!(
        lucca.settings,
        [
            ("base_url".to_string(), "http://127.0.0.1:1234".to_string()),
            ("page_size".to_string(), "100".to_string()),
            ("strict".to_string(), "true".to_string()),
        ]
    );
    assert_eq!(
        lucca.secret,
        Some(SecretSource::Env("LUCCA_API_KEY".into()))
    );
    assert_eq!(lucca.hosts, ["https://acme.ilucca.net"]);
    assert!(lucca.allow_loopback);
    let leapsome = &c.connections["leapsome"];
    assert_eq!(
        leapsome.secret,
        Some(SecretSource::File("/etc/muster/secrets/leapsome".into()))
    );
    assert!(!leapsome.allow_loopback);
    assert!(leapsome.hosts.is_empty());
    assert_eq!(leapsome.max_in_flight, 4);
    assert_eq!(lucca.max_in_flight, muster::config::DEFAULT_IN_FLIGHT);
    assert_eq!(
        c.connections["flatchr"].plugin,
        PluginRef::Path("/etc/muster/./plugins/flatchr.wasm".into())
    );

    let f = c.flow("lucca-to-leapsome").unwrap();
    assert_eq!(
        (f.source.as_str(), f.target.as_str()),
        ("lucca", "leapsome")
    );
    assert_eq!(f.schedule, Some(Schedule::parse("daily 02:00").unwrap()));
    assert!(f.webhook.is_none());
    assert!(f.mapping.rules.is_empty());
    let owned: FieldSet = [
        FieldRef::from(Field::GivenName),
        Field::FamilyName.into(),
        Field::WorkEmail.into(),
        Field::ManagerId.into(),
        FieldRef::Custom("e_formation".into()),
    ]
    .into_iter()
    .collect();
    let expected = Policy {
        allowed: Allowed::ALL,
        owned,
        correlation: vec![CorrelationKey::EmployeeNumber, CorrelationKey::WorkEmail],
        required_on_create: [FieldRef::from(Field::WorkEmail), Field::GivenName.into()]
            .into_iter()
            .collect(),
        pre_start_days: 3,
        deactivate_after_days: 0,
        reactivate: true,
        invite_on_create: true,
        sync_groups: false,
        // Sorted by action kind; the deactivation threshold keeps its
        // default `ratio_from`.
        guard: Guard {
            thresholds: vec![
                (
                    ActionKind::Create,
                    Threshold {
                        max: Some(200),
                        max_ratio: None,
                        ratio_from: 0,
                    },
                ),
                (
                    ActionKind::Deactivate,
                    Threshold {
                        max: Some(25),
                        max_ratio: Some(0.10),
                        ratio_from: 2,
                    },
                ),
            ],
        },
        row_keys: [("e_formation".to_string(), "e_title".to_string())].into(),
        identity_links: None,
        login_taken: muster_core::LoginTaken::Suffix,
        manager_match: ManagerMatch::WorkEmail,
    };
    assert_eq!(f.policy, expected);

    let inbound = c.flow("flatchr-to-lucca").unwrap();
    assert_eq!(inbound.schedule, None);
    assert_eq!(inbound.policy.allowed, Allowed::CREATE_ONLY);
    assert!(!inbound.policy.reactivate);
    assert_eq!(inbound.policy.guard, Guard::off());
    let hook = inbound.webhook.as_ref().unwrap();
    assert_eq!(hook.id_field, "candidate.id");
    assert_eq!(hook.require, ["event", "data.column.id"]);
    assert_eq!(
        inbound.policy.login_taken,
        muster_core::LoginTaken::Conflict
    );
    assert_eq!(
        hook.secret,
        SecretSource::Env("FLATCHR_WEBHOOK_SECRET".into())
    );
    assert_eq!(
        inbound.mapping.rules,
        vec![
            Rule::Coalesce {
                field: Field::WorkEmail.into(),
                from: vec![Field::WorkEmail.into(), Field::PersonalEmail.into()],
            },
            Rule::Rename {
                from: FieldRef::Custom("hired_on".into()),
                to: Field::StartDate.into(),
            },
            Rule::Default {
                field: Field::LegalEntityId.into(),
                value: FieldValue::Text("1".into()),
            },
            Rule::Template {
                field: Field::Login.into(),
                pattern: "{given_name|initial}{family_name}|login".into(),
                keep_existing: true,
            },
            Rule::ValueMap {
                from: FieldRef::Custom("establishment".into()),
                to: Field::LegalEntityId.into(),
                values: [("Lyon".into(), "13".into()), ("Paris".into(), "12".into())]
                    .into_iter()
                    .collect(),
                fallback: Some("1".into()),
            },
        ]
    );
}

#[test]
fn defaults_are_the_core_defaults() {
    let c = parse(&with_flow("")).unwrap();
    let f = &c.flows["f"];
    assert_eq!(f.policy, Policy::default());
    assert!(f.schedule.is_none() && f.webhook.is_none() && f.mapping.rules.is_empty());
    // Listing "reactivate" among the actions turns reactivation on.
    let c = parse(&with_flow(
        "actions = [\"create\", \"update\", \"reactivate\"]\n",
    ))
    .unwrap();
    let p = &c.flows["f"].policy;
    assert!(p.reactivate && p.allowed.reactivate && !p.allowed.deactivate && !p.allowed.link);
}

#[test]
fn missing_key_names_the_key_its_section_and_the_line() {
    let text = "[tenant]\nname = \"acme\"\nstate = \"s.db\"\n";
    let e = parse(text).unwrap_err();
    assert_eq!(e.key(), Some("tenant.timezone"));
    assert_eq!(e.line_col(), Some((1, 1)));
    let msg = e.to_string();
    assert!(
        msg.starts_with(
            "/etc/muster/acme.toml:1:1: `tenant.timezone`: missing key `timezone` in `[tenant]`"
        ),
        "{msg}"
    );
    assert!(msg.contains("timezone = \"Europe/Paris\""), "{msg}");

    let msg = err("");
    assert!(
        msg.contains("missing key `tenant` at the top level"),
        "{msg}"
    );

    let msg = err(&with_flow("").replace("target = \"b\"\n", ""));
    assert!(
        msg.contains("`flows.f.target`: missing key `target` in `[flows.f]`"),
        "{msg}"
    );
}

#[test]
fn wrong_type_says_what_was_expected_and_found() {
    let msg = err(&with_flow("options = { invite_on_create = \"yes\" }\n"));
    assert!(
        msg.contains(
            ":15:32: `flows.f.options.invite_on_create`: expected a boolean, found a string"
        ),
        "{msg}"
    );
    assert!(msg.contains("invite_on_create = true"), "{msg}");

    let msg = err(&with_flow("actions = \"create\"\n"));
    assert!(
        msg.contains("`flows.f.actions`: expected an array, found a string"),
        "{msg}"
    );

    let msg = err(&with_flow("guard = { max_deactivate = \"25\" }\n"));
    assert!(
        msg.contains("`flows.f.guard.max_deactivate`: expected an integer"),
        "{msg}"
    );

    let msg = err(&with_flow("guard = { max_deactivate_ratio = 10 }\n"));
    assert!(msg.contains("share from 0.0 to 1.0"), "{msg}");

    let msg = err("tenant = 3\n");
    assert!(
        msg.contains("`tenant`: expected a table, found an integer"),
        "{msg}"
    );
}

/// `max_in_flight` is a count from 1 to the cap; anything else names the
/// key, its line:column and the accepted range.
#[test]
fn max_in_flight_is_a_count_of_calls_from_1_up_to_the_cap() {
    let conn = |value: &str| {
        format!(
            "[tenant]\nname = \"acme\"\ntimezone = \"UTC\"\nstate = \"s.db\"\n\n\
             [connections.a]\nplugin = \"lucca\"\nmax_in_flight = {value}\n"
        )
    };
    let c = parse(&conn("1")).expect("1 is one call at a time");
    assert_eq!(c.connections["a"].max_in_flight, 1);
    let c = parse(&conn(&muster::config::MAX_IN_FLIGHT.to_string())).expect("the cap");
    assert_eq!(
        c.connections["a"].max_in_flight,
        muster::config::MAX_IN_FLIGHT
    );
    for bad in ["0", "-3", "65"] {
        let msg = err(&conn(bad));
        assert!(
            msg.contains(
                ":8:17: `connections.a.max_in_flight`: expected a number of calls from 1 to 64"
            ),
            "{bad}: {msg}"
        );
    }
    let msg = err(&conn("\"8\""));
    assert!(
        msg.contains("`connections.a.max_in_flight`: expected an integer, found a string"),
        "{msg}"
    );
    let msg = err(&conn("8\nmax_in_fligth = 2"));
    assert!(msg.contains("did you mean `max_in_flight`"), "{msg}");
}

#[test]
fn unknown_keys_are_refused_with_the_closest_known_key() {
    let msg = err(&with_flow("shedule = \"daily 02:00\"\n"));
    assert!(
        msg.contains(":15:1: `flows.f.shedule`: unknown key `shedule`; did you mean `schedule`?"),
        "{msg}"
    );
    let msg = err(&with_flow("guard = { max_deactivte = 3 }\n"));
    assert!(
        msg.contains("unknown guard key `max_deactivte`; did you mean `max_deactivate`?"),
        "{msg}"
    );
    let msg = err(
        "[tenant]\nname = \"a\"\ntimezone = \"UTC\"\nstate = \"s\"\n[conections.a]\nplugin = \"lucca\"\n",
    );
    assert!(msg.contains("did you mean `connections`?"), "{msg}");
}

#[test]
fn login_taken_and_webhook_require_errors_name_the_key_and_the_fix() {
    let msg = err(&with_flow("options = { login_taken = \"sufix\" }\n"));
    assert!(
        msg.contains("`flows.f.options.login_taken`: unknown rule `sufix`; use \"suffix\""),
        "{msg}"
    );
    let msg = err(&with_flow(
        "webhook = { secret = { env = \"S\" }, id_field = \"data.applicant\", require = [\"data..id\"] }\n",
    ));
    assert!(
        msg.contains("`flows.f.webhook.require`") && msg.contains("no empty segments"),
        "{msg}"
    );
}

#[test]
fn unknown_plugin_lists_the_built_in_ones_and_the_path_form() {
    let text = with_flow("").replace("plugin = \"leapsome\"", "plugin = \"leapsom\"");
    let e = parse(&text).unwrap_err();
    assert_eq!(e.key(), Some("connections.b.plugin"));
    let msg = e.to_string();
    assert!(
        msg.contains(
            ":10:10: `connections.b.plugin`: unknown plugin `leapsom`; did you mean `leapsome`?"
        ),
        "{msg}"
    );
    assert!(
        msg.contains("built-in plugins are lucca, leapsome, scim, flatchr"),
        "{msg}"
    );
    assert!(msg.contains("plugin = \"./leapsom.wasm\""), "{msg}");
}

#[test]
fn unknown_connection_names_the_defined_ones() {
    let text = with_flow("").replace("target = \"b\"", "target = \"leapsome\"");
    let e = parse(&text).unwrap_err();
    assert_eq!(e.key(), Some("flows.f.target"));
    let msg = e.to_string();
    assert!(
        msg.contains(":14:10: `flows.f.target`: unknown connection `leapsome`"),
        "{msg}"
    );
    assert!(msg.contains("defined connections: a, b"), "{msg}");
    assert!(msg.contains("[connections.leapsome]"), "{msg}");
}

#[test]
fn bad_time_zone_suggests_the_closest_iana_name() {
    let e =
        parse("[tenant]\nname = \"a\"\ntimezone = \"Europe/Pari\"\nstate = \"s\"\n").unwrap_err();
    assert_eq!(e.key(), Some("tenant.timezone"));
    assert_eq!(e.line_col(), Some((3, 12)));
    let msg = e.to_string();
    assert!(
        msg.contains("unknown time zone `Europe/Pari`; did you mean `Europe/Paris`?"),
        "{msg}"
    );
    assert!(msg.contains("IANA name"), "{msg}");
}

#[test]
fn bad_schedule_lists_the_accepted_forms() {
    let msg = err(&with_flow("schedule = \"daily 2am\"\n"));
    assert!(
        msg.contains("`flows.f.schedule`: bad schedule `daily 2am`"),
        "{msg}"
    );
    assert!(msg.contains("daily HH:MM"), "{msg}");
}

#[test]
fn inline_secret_is_refused_without_echoing_it() {
    let text = with_flow("").replace(
        "plugin = \"lucca\"\n",
        "plugin = \"lucca\"\nsecret = \"s3cr3t-api-key\"\n",
    );
    let e = parse(&text).unwrap_err();
    assert_eq!(e.key(), Some("connections.a.secret"));
    let msg = e.to_string();
    assert!(
        msg.contains("secrets come from the environment or a file"),
        "{msg}"
    );
    assert!(msg.contains("secret = { env = "), "{msg}");
    assert!(
        !msg.contains("s3cr3t"),
        "the error must not echo the secret: {msg}"
    );
    // Same for a webhook secret.
    let msg = err(&with_flow(
        "webhook = { secret = \"hook-s3cr3t\", id_field = \"id\" }\n",
    ));
    assert!(
        msg.contains("`flows.f.webhook.secret`") && !msg.contains("hook-s3cr3t"),
        "{msg}"
    );
}

#[test]
fn fields_actions_and_mapping_are_checked_against_the_core() {
    let msg = err(&with_flow("fields = [\"work_emial\"]\n"));
    assert!(
        msg.contains("`flows.f.fields[0]`: unknown field `work_emial`; did you mean `work_email`?"),
        "{msg}"
    );
    assert!(msg.contains("`custom:work_emial`"), "{msg}");
    let msg = err(&with_flow("actions = [\"create\", \"delete\"]\n"));
    assert!(
        msg.contains("`flows.f.actions[1]`: unknown action `delete`; muster never deletes"),
        "{msg}"
    );
    let msg = err(&with_flow("correlation = [\"email\"]\n"));
    assert!(msg.contains("unknown correlation key `email`"), "{msg}");
    let msg = err(&with_flow("options = { manager_match = \"work_mail\" }\n"));
    assert!(
        msg.contains("`flows.f.options.manager_match`: unknown manager_match `work_mail`; did you mean `work_email`?"),
        "{msg}"
    );
    let msg = err(&with_flow(
        "mapping = [{ template = { field = \"login\", pattern = \"{given_name|shout}\" } }]\n",
    ));
    assert!(
        msg.contains("`flows.f.mapping[0].template.pattern`: template filter `shout` is unknown"),
        "{msg}"
    );
    let msg = err(&with_flow(
        "mapping = [{ default = { field = \"birth_date\", value = \"soon\" } }]\n",
    ));
    assert!(msg.contains("`birth_date` expects a date"), "{msg}");
    let msg = err(&with_flow(
        "mapping = [{ renam = { from = \"a\", to = \"b\" } }]\n",
    ));
    assert!(msg.contains("did you mean `rename`?"), "{msg}");
    let msg = err(&with_flow(
        "options = { reactivate = true }\nactions = [\"create\"]\n",
    ));
    assert!(msg.contains("do not include \"reactivate\""), "{msg}");
}

#[test]
fn row_keys_name_owned_compound_fields_and_their_key_sub_field() {
    let fields = "fields = [\"job_title\", \"custom:e_formation\"]\n";
    let c = parse(&with_flow(&format!(
        "{fields}row_keys = {{ e_formation = \"e_title\" }}\n"
    )))
    .unwrap();
    let policy = &c.flow("f").unwrap().policy;
    assert_eq!(
        policy.row_keys.get("e_formation").map(String::as_str),
        Some("e_title")
    );
    assert_eq!(policy.row_keys.len(), 1);

    // A typo of an owned field: its line:column and the closest one.
    let msg = err(&with_flow(&format!(
        "{fields}row_keys = {{ e_formaton = \"e_title\" }}\n"
    )));
    assert!(
        msg.contains(
            "acme.toml:16:14: `flows.f.row_keys.e_formaton`: `row_keys` names `e_formaton`, which the flow does not own; did you mean `e_formation`?"
        ),
        "{msg}"
    );
    // A compound field the flow does not own at all.
    let msg = err(&with_flow("row_keys = { e_formation = \"e_title\" }\n"));
    assert!(msg.contains("the flow owns no custom field"), "{msg}");
    assert!(
        msg.contains("list it in `fields` as `custom:e_formation`"),
        "{msg}"
    );
    // A canonical field has no rows; the key must be a non-empty string.
    let msg = err(&with_flow(&format!(
        "{fields}row_keys = {{ job_title = \"x\" }}\n"
    )));
    assert!(
        msg.contains("`job_title` is a canonical field and has no rows"),
        "{msg}"
    );
    let msg = err(&with_flow(&format!(
        "{fields}row_keys = {{ e_formation = 3 }}\n"
    )));
    assert!(msg.contains("`flows.f.row_keys.e_formation`"), "{msg}");
    let msg = err(&with_flow(&format!(
        "{fields}row_keys = {{ e_formation = \" \" }}\n"
    )));
    assert!(
        msg.contains("name the sub-field whose value identifies a row"),
        "{msg}"
    );
}

#[test]
fn toml_syntax_errors_point_at_the_line() {
    let e = parse("[tenant]\nname = \"acme\ntimezone = \"UTC\"\n").unwrap_err();
    assert!(matches!(e, ConfigError::Syntax { line: 2, .. }), "{e}");
    assert!(e.to_string().starts_with("/etc/muster/acme.toml:2:"), "{e}");
}

#[test]
fn load_resolves_paths_against_the_config_directory_and_secrets_load_on_demand() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("secrets")).unwrap();
    std::fs::write(dir.path().join("secrets/leapsome"), "tok-123\n").unwrap();
    let path = dir.path().join("acme.toml");
    std::fs::write(&path, FULL).unwrap();
    let c = Config::load(&path).unwrap();
    assert_eq!(c.path, path);
    assert_eq!(c.tenant.state, dir.path().join("muster.db"));
    let secret = c.connections["leapsome"]
        .secret
        .as_ref()
        .unwrap()
        .load()
        .unwrap();
    assert_eq!(secret.expose(), "tok-123");
    assert_eq!(format!("{secret:?}"), "Secret([redacted])");

    let e = Config::load(dir.path().join("nope.toml")).unwrap_err();
    assert!(matches!(e, ConfigError::Read { .. }), "{e}");
    assert!(e.to_string().contains("nope.toml"), "{e}");
}

#[test]
fn the_example_in_docs_config_md_is_valid() {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/config.md"))
            .unwrap();
    let after = doc.split("## A complete example").nth(1).unwrap();
    let example = after
        .split("```toml\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .unwrap();
    let c = parse(example).unwrap_or_else(|e| panic!("docs/config.md example: {e}"));
    assert_eq!(c.connections.len(), 3);
    assert_eq!(c.flows.len(), 2);
    let f = c.flow("lucca-to-leapsome").unwrap();
    assert!(f.policy.reactivate && f.policy.invite_on_create);
    assert!(c.flow("flatchr-to-lucca").unwrap().webhook.is_some());
    assert!(
        c.flow("nope")
            .unwrap_err()
            .contains("configured flows: flatchr-to-lucca, lucca-to-leapsome")
    );
}

/// Lucca → Cards and the Cards statistics written back into Lucca, as
/// `docs/config.md` shows them.
fn write_back(correlation: &str) -> String {
    format!(
        "[tenant]\nname = \"acme\"\ntimezone = \"Europe/Paris\"\nstate = \"s.db\"\n\n\
         [connections.lucca]\nplugin = \"lucca\"\n\n[connections.cards]\nplugin = \"lucca\"\n\n\
         [flows.lucca-to-cards]\nsource = \"lucca\"\ntarget = \"cards\"\n\n\
         [flows.cards-to-lucca]\nsource = \"cards\"\ntarget = \"lucca\"\n\
         schedule = \"daily 01:00\"\nactions = [\"link\", \"update\"]\n\
         fields = [\"custom:e_formation\"]\nrow_keys = {{ e_formation = \"e_title\" }}\n\
         correlation = {correlation}\n"
    )
}

#[test]
fn a_write_back_matches_through_another_flows_links_then_by_email() {
    let c = parse(&write_back(r#"["links:lucca-to-cards", "work_email"]"#)).unwrap();
    let f = &c.flows["cards-to-lucca"];
    assert_eq!(f.policy.identity_links.as_deref(), Some("lucca-to-cards"));
    assert_eq!(f.policy.correlation, [CorrelationKey::WorkEmail]);
    assert_eq!(
        f.schedule,
        Some(Schedule::parse("daily 01:00").unwrap()),
        "daily at 01:00 in the tenant's zone (Europe/Paris)"
    );
    assert_eq!(c.tenant.timezone_name, "Europe/Paris");
    assert_eq!(c.flows["lucca-to-cards"].policy.identity_links, None);
}

#[test]
fn a_links_correlation_entry_names_a_flow_the_other_way_round_and_comes_first() {
    let msg = err(&write_back(r#"["links:lucca-to-card", "work_email"]"#));
    assert!(
        msg.contains(
            "acme.toml:23:16: `flows.cards-to-lucca.correlation[0]`: `links:lucca-to-card` names no configured flow; did you mean `lucca-to-cards`?"
        ),
        "{msg}"
    );
    let msg = err(&write_back(r#"["links:cards-to-lucca"]"#));
    assert!(
        msg.contains("flow `cards-to-lucca` goes from `cards` to `lucca`; its links can identify people for this flow only if it goes from `lucca` (this flow's target) to `cards` (this flow's source)"),
        "{msg}"
    );
    let msg = err(&write_back(r#"["work_email", "links:lucca-to-cards"]"#));
    assert!(
        msg.contains("`flows.cards-to-lucca.correlation[1]`: `links:lucca-to-cards` must be the first correlation entry"),
        "{msg}"
    );
    let msg = err(&write_back(r#"["links:"]"#));
    assert!(msg.contains("`links:` needs a flow name"), "{msg}");
    let msg = err(&write_back(r#"["link:lucca-to-cards"]"#));
    assert!(
        msg.contains("unknown correlation key `link:lucca-to-cards`")
            && msg.contains("or `links:<flow>` first"),
        "{msg}"
    );
}

#[test]
fn deactivate_after_days_sets_the_grace_period_and_is_checked() {
    let config = parse(&with_flow("options = { deactivate_after_days = 14 }\n")).expect("parses");
    let flow = config.flow("f").expect("flow f");
    assert_eq!(flow.policy.deactivate_after_days, 14);
    // Default: none, as before the option existed.
    let config = parse(&with_flow("")).expect("parses");
    assert_eq!(config.flow("f").expect("f").policy.deactivate_after_days, 0);
    for bad in ["-1", "367", "\"2w\""] {
        let msg = err(&with_flow(&format!(
            "options = {{ deactivate_after_days = {bad} }}\n"
        )));
        assert!(
            msg.contains("`flows.f.options.deactivate_after_days`"),
            "{bad}: {msg}"
        );
    }
    let msg = err(&with_flow("options = { deactivate_after_day = 3 }\n"));
    assert!(
        msg.contains("did you mean `deactivate_after_days`?"),
        "{msg}"
    );
}

#[test]
fn serve_admins_are_names_with_password_secrets() {
    let c = parse(&with_flow(
        "\n[serve]\nadmins = { hr-alice = { password = { env = \"MUSTER_ADMIN_ALICE\" } }, \
         \"it.bob\" = { password = { file = \"bob.pw\" } } }\n",
    ))
    .unwrap();
    let admins: Vec<(&str, &SecretSource)> = c
        .serve
        .admins
        .iter()
        .map(|a| (a.name.as_str(), &a.password))
        .collect();
    assert_eq!(
        admins,
        [
            ("hr-alice", &SecretSource::Env("MUSTER_ADMIN_ALICE".into())),
            ("it.bob", &SecretSource::File("/etc/muster/bob.pw".into())),
        ]
    );
    assert!(parse(&with_flow("")).unwrap().serve.admins.is_empty());

    // An inline password is refused without being repeated.
    let msg = err(&with_flow(
        "\n[serve]\nadmins = { hr-alice = { password = \"hunter2\" } }\n",
    ));
    assert!(
        msg.contains(":17:") && msg.contains("`serve.admins.hr-alice.password`"),
        "{msg}"
    );
    assert!(
        msg.contains("never inline") && !msg.contains("hunter2"),
        "{msg}"
    );
    let msg = err(&with_flow("\n[serve]\nadmin = {}\n"));
    assert!(
        msg.contains("unknown key `admin`; did you mean `admins`?"),
        "{msg}"
    );
    let msg = err(&with_flow("\n[serve]\nadmins = { hr-alice = {} }\n"));
    assert!(msg.contains("missing key `password`"), "{msg}");
    let msg = err(&with_flow(
        "\n[serve]\nadmins = { \"hr alice\" = { password = { env = \"A\" } } }\n",
    ));
    assert!(msg.contains("an admin name may only hold letters"), "{msg}");
}

/// `state` is a file or a PostgreSQL URL; the password comes only from
/// `state_password`, a secret, and never shows in an error.
#[test]
fn a_postgres_state_takes_its_password_from_a_secret_only() {
    use muster::store::Location;
    let tenant = |state: &str, extra: &str| {
        format!(
            "[tenant]\nname = \"acme\"\ntimezone = \"UTC\"\nstate = \"{state}\"\n{extra}\n\
             [connections.a]\nplugin = \"lucca\"\n"
        )
    };
    let config = parse(&tenant(
        "postgres://muster@db.internal:6432/state",
        "state_password = { env = \"MUSTER_TEST_STATE_PASSWORD_UNSET\" }",
    ))
    .unwrap();
    assert_eq!(
        config.tenant.state_password,
        Some(SecretSource::Env("MUSTER_TEST_STATE_PASSWORD_UNSET".into()))
    );
    // The secret is read when the store is opened, not when parsing.
    let e = config.tenant.location().unwrap_err().to_string();
    assert!(
        e.contains("MUSTER_TEST_STATE_PASSWORD_UNSET") && e.contains("is not set"),
        "{e}"
    );

    let config = parse(&tenant("postgres://muster@db.internal/state", "")).unwrap();
    match config.tenant.location().unwrap() {
        Location::Postgres(pg) => assert_eq!(pg.describe(), "muster@db.internal:5432/state"),
        other => panic!("not PostgreSQL: {other:?}"),
    }
    let config = parse(&tenant("muster.db", "")).unwrap();
    assert!(matches!(
        config.tenant.location().unwrap(),
        Location::Sqlite(p) if p == Path::new("/etc/muster/muster.db")
    ));

    let e = err(&tenant("postgres://muster:hunter2@db/state", ""));
    assert!(
        e.contains("acme.toml:4:") && e.contains("state_password"),
        "{e}"
    );
    assert!(!e.contains("hunter2"), "{e}");
    let e = err(&tenant("muster.db", "state_password = { env = \"X\" }"));
    assert!(
        e.contains("tenant.state_password") && e.contains("PostgreSQL"),
        "{e}"
    );
}
