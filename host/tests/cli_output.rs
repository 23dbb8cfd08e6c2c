//! What an operator reads, pinned by snapshots: `muster plan` in its human
//! form and as `--json` (the stable schema of `docs/plan-json.md`), and the
//! configuration errors of the usual mistakes with their exit code 2.
//!
//! The real binary runs against the Lucca and Leapsome simulators on
//! loopback with a small generated tenant (same seed, same people) and
//! `MUSTER_TODAY` fixed, so the plan is the same on every run. What differs
//! between runs — the temp directory, the simulators' ports and the snapshot
//! digest made from them — is replaced by `[DIR]`, `[LUCCA]`, `[LEAPSOME]`
//! and `[DIGEST]` before comparing.
//!
//! To review a change of output: `INSTA_UPDATE=always cargo test -p muster
//! --test cli_output`, then read the `.snap` diff in `git diff`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use muster_sandbox::{
    Directory, LeapsomeOptions, LeapsomeSim, LuccaOptions, LuccaSim, ScimUser, Tenant,
};

/// The sandbox tenants' "today" (their simulated epoch).
const TODAY: &str = "2026-06-01";

fn cache_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("muster-plugin-cache")
}

/// Twelve generated people in Lucca; in Leapsome, an account made by hand
/// for one of them (the plan links it) and one nobody in Lucca matches (the
/// plan leaves it alone).
struct World {
    lucca: LuccaSim,
    leapsome: LeapsomeSim,
    dir: tempfile::TempDir,
}

impl World {
    fn new() -> World {
        World::with_flow("")
    }

    /// The world with `flow` (TOML lines) added to the flow's section.
    fn with_flow(flow: &str) -> World {
        let tenant = Tenant::generate(11, 12);
        let known = tenant
            .users
            .iter()
            .filter_map(|u| u.mail.clone())
            .nth(2)
            .expect("a generated person with an e-mail");
        let mut directory = Directory::new();
        directory.add_user(ScimUser {
            given_name: Some("Made".into()),
            family_name: Some("ByHand".into()),
            ..ScimUser::new("", &known)
        });
        directory.add_user(ScimUser {
            given_name: Some("Board".into()),
            family_name: Some("Member".into()),
            ..ScimUser::new("", "board.member@sandbox.example")
        });
        let lucca = LuccaSim::start(
            tenant,
            LuccaOptions {
                rate_limit: None,
                ..LuccaOptions::default()
            },
        )
        .expect("start lucca");
        let leapsome = LeapsomeSim::start(LeapsomeOptions {
            rate_limit: None,
            directory,
            ..LeapsomeOptions::default()
        })
        .expect("start leapsome");
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("lucca.key"), lucca.api_key()).expect("key");
        std::fs::write(dir.path().join("leapsome.token"), leapsome.token()).expect("token");
        // Secret files are private, as `muster check` asks (it warns otherwise).
        for f in ["lucca.key", "leapsome.token"] {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path().join(f), std::fs::Permissions::from_mode(0o600))
                .expect("chmod");
        }
        let config = format!(
            r#"[tenant]
name = "snapshots"
timezone = "Europe/Paris"
state = "state.db"
cache = "{cache}"

[connections.lucca]
plugin = "lucca"
settings = {{ base_url = "{lucca}" }}
secret = {{ file = "lucca.key" }}
allow_loopback = true

[connections.leapsome]
plugin = "leapsome"
settings = {{ base_url = "{leapsome}" }}
secret = {{ file = "leapsome.token" }}
allow_loopback = true
# One call at a time: the simulator numbers accounts in the order creates
# arrive, and these snapshots print those ids.
max_in_flight = 1

[flows.people]
source = "lucca"
target = "leapsome"
options = {{ reactivate = true, sync_groups = true }}
{flow}"#,
            cache = cache_dir().display(),
            lucca = lucca.base_url(),
            leapsome = leapsome.base_url(),
        );
        std::fs::write(dir.path().join("muster.toml"), config).expect("config");
        World {
            lucca,
            leapsome,
            dir,
        }
    }

    fn muster(&self, args: &[&str]) -> Output {
        muster(self.dir.path(), args)
    }

    /// `text` with what varies between runs replaced by placeholders.
    fn redact(&self, text: &str) -> String {
        redact_dir(text, self.dir.path())
            .replace(&self.lucca.base_url(), "[LUCCA]")
            .replace(&self.leapsome.base_url(), "[LEAPSOME]")
    }
}

/// Runs the binary with `--config DIR/muster.toml` and a fixed today.
fn muster(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_muster"))
        .args(args)
        .arg("--config")
        .arg(dir.join("muster.toml"))
        .env("MUSTER_TODAY", TODAY)
        .env_remove("MUSTER_CONFIG")
        .env_remove("RUST_LOG")
        .output()
        .expect("run muster")
}

fn redact_dir(text: &str, dir: &Path) -> String {
    text.replace(&dir.display().to_string(), "[DIR]")
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn plan_human_output() {
    let world = World::new();
    let out = world.muster(&["plan"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = world.redact(&String::from_utf8_lossy(&out.stdout));
    // The plan is made of what the snapshot pins: creates, the hand-made
    // account linked, managers, teams; a plan changes nothing.
    assert!(stdout.contains("\nlink (1):"), "{stdout}");
    assert!(stdout.contains("\ncreate ("), "{stdout}");
    // People by name, never ids or placeholder text.
    assert!(
        stdout.contains("      manager_id: (none) -> Bruno Bernard (created in this run)\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("      members: Bruno Bernard, Agnès Peña, Bruno Mercier,"),
        "{stdout}"
    );
    assert!(!stdout.contains("new account of source"), "{stdout}");
    assert_eq!(world.leapsome.users().len(), 2, "plan changed the target");
    insta::assert_snapshot!("plan_human", stdout);
}

#[test]
fn plan_json_output() {
    let world = World::new();
    let out = world.muster(&["plan", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let plan: serde_json::Value =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", text(&out)));
    assert_eq!(plan["format"], "muster-plan/1");
    assert_eq!(plan["flow"], "people");
    assert_eq!(plan["today"], TODAY);
    let digest = plan["snapshot"].as_str().expect("snapshot digest");
    assert_eq!(digest.len(), 64, "{digest}");
    assert!(digest.bytes().all(|b| b.is_ascii_hexdigit()), "{digest}");
    // The counts are the steps counted by kind.
    let steps = plan["steps"].as_array().expect("steps");
    let creates = steps.iter().filter(|s| s["kind"] == "create").count();
    assert_eq!(plan["counts"]["create"].as_u64(), Some(creates as u64));
    let stdout = world.redact(&stdout).replace(digest, "[DIGEST]");
    insta::assert_snapshot!("plan_json", stdout);
}

/// A config with `body` in a fresh directory; the text `muster check` prints
/// on stderr (directory redacted) and its exit code, which must be 2.
fn config_error(body: &str) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("muster.toml"), body).expect("config");
    let out = muster(dir.path(), &["check"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(out.stdout.is_empty(), "{}", text(&out));
    redact_dir(&String::from_utf8_lossy(&out.stderr), dir.path())
}

const VALID_START: &str = r#"[tenant]
name = "acme"
timezone = "Europe/Paris"
state = "muster.db"

[connections.lucca]
plugin = "lucca"
settings = { subdomain = "acme" }
secret = { env = "LUCCA_API_KEY" }
"#;

#[test]
fn a_missing_key_is_named_with_its_line_and_exit_code_2() {
    let stderr = config_error(&format!(
        "{VALID_START}
[connections.leapsome]
plugin = \"leapsome\"

[flows.lucca-to-leapsome]
source = \"lucca\"
"
    ));
    assert!(stderr.contains("target"), "{stderr}");
    insta::assert_snapshot!("config_missing_key", stderr);
}

#[test]
fn a_wrong_type_is_named_with_its_line_and_exit_code_2() {
    let stderr = config_error(&format!(
        "{VALID_START}
[connections.leapsome]
plugin = \"leapsome\"
allow_loopback = \"yes\"
"
    ));
    assert!(stderr.contains("allow_loopback"), "{stderr}");
    insta::assert_snapshot!("config_wrong_type", stderr);
}

#[test]
fn an_unknown_plugin_is_named_with_its_line_and_exit_code_2() {
    let stderr = config_error(&format!(
        "{VALID_START}
[connections.leapsome]
plugin = \"leapsom\"
"
    ));
    assert!(stderr.contains("leapsom"), "{stderr}");
    insta::assert_snapshot!("config_unknown_plugin", stderr);
}

/// `text` with RFC 3339 timestamps (`2026-11-22T23:12:57.280Z`) replaced by
/// `[TIME]`: `history` prints when runs started and finished.
fn redact_times(text: &str) -> String {
    text.lines()
        .map(|line| {
            line.split(' ')
                .map(|word| {
                    let (bare, comma) = match word.strip_suffix(',') {
                        Some(b) => (b, ","),
                        None => (word, ""),
                    };
                    let stamp = bare.len() >= 20
                        && bare.starts_with(|c: char| c.is_ascii_digit())
                        && bare.contains('T')
                        && bare.ends_with('Z');
                    if stamp {
                        format!("[TIME]{comma}")
                    } else {
                        word.to_owned()
                    }
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn check_then_sync_then_history_output() {
    let world = World::new();
    let check = world.muster(&["check"]);
    assert_eq!(check.status.code(), Some(0), "{}", text(&check));
    insta::assert_snapshot!("check", String::from_utf8_lossy(&check.stdout));

    let sync = world.muster(&["sync"]);
    assert_eq!(sync.status.code(), Some(0), "{}", text(&sync));
    // The hand-made account plus the nine created; the unowned one untouched.
    assert_eq!(world.leapsome.users().len(), 11);
    let board = world
        .leapsome
        .user_by_email("board.member@sandbox.example")
        .expect("the unowned account");
    assert!(board.active && board.external_id.is_none(), "{board:?}");

    let history = world.muster(&["history"]);
    assert_eq!(history.status.code(), Some(0), "{}", text(&history));
    let stdout = redact_times(&world.redact(&String::from_utf8_lossy(&history.stdout)));
    // One run: its start and its end, both redacted.
    assert_eq!(stdout.matches("[TIME]").count(), 2, "{stdout}");
    insta::assert_snapshot!("history", stdout);
}

/// A create writes the owned fields plus what the target requires, nothing
/// else of the source record; the plan says which required fields it
/// carries without owning them.
#[test]
fn a_create_writes_only_owned_and_required_fields_and_the_plan_says_so() {
    let world = World::with_flow("fields = [\"work_email\", \"job_title\"]\n");
    let plan = world.muster(&["plan"]);
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan));
    let stdout = String::from_utf8_lossy(&plan.stdout);
    assert!(
        stdout.contains("      also writes given_name, family_name (the target requires it"),
        "{stdout}"
    );
    let json = world.muster(&["plan", "--json"]);
    let plan: serde_json::Value = serde_json::from_slice(&json.stdout).expect("plan JSON");
    let creates: Vec<&serde_json::Value> = plan["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter(|s| s["kind"] == "create")
        .collect();
    assert!(!creates.is_empty(), "{plan:#}");
    for c in &creates {
        assert_eq!(
            c["carries"],
            serde_json::json!(["given_name", "family_name"]),
            "{c}"
        );
    }

    let sync = world.muster(&["sync"]);
    assert_eq!(sync.status.code(), Some(0), "{}", text(&sync));
    let created: Vec<ScimUser> = world
        .leapsome
        .users()
        .into_iter()
        .filter(|u| {
            u.given_name.as_deref() != Some("Made") && u.given_name.as_deref() != Some("Board")
        })
        .collect();
    assert_eq!(created.len(), creates.len());
    let source = world.lucca.tenant();
    for u in &created {
        let person = source
            .users
            .iter()
            .find(|p| p.mail.as_deref() == Some(u.user_name.as_str()))
            .expect("a created account has its person's work email");
        assert!(u.given_name.is_some() && u.family_name.is_some(), "{u:?}");
        assert_eq!(u.title, person.job_title, "{u:?}");
        // Neither owned nor required: never sent.
        assert!(
            u.emails.iter().all(|e| e.kind.as_deref() == Some("work")),
            "{u:?}"
        );
        assert_eq!(
            (&u.birthday, &u.start_date, &u.gender, &u.employee_number),
            (&None, &None, &None, &None),
            "{u:?}"
        );
    }
}

/// `plan --detailed-exitcode`: 5 with changes, 3 when the guard would hold
/// it, 0 once the target matches; without the flag a plan exits 0.
#[test]
fn plan_detailed_exitcode_tells_scripts_what_a_sync_would_do() {
    let world = World::new();
    assert_eq!(world.muster(&["plan"]).status.code(), Some(0));
    let changes = world.muster(&["plan", "--detailed-exitcode"]);
    assert_eq!(changes.status.code(), Some(5), "{}", text(&changes));
    assert!(changes.stderr.is_empty(), "{}", text(&changes));
    let sync = world.muster(&["sync"]);
    assert_eq!(sync.status.code(), Some(0), "{}", text(&sync));
    let none = world.muster(&["plan", "--detailed-exitcode"]);
    assert_eq!(none.status.code(), Some(0), "{}", text(&none));

    let guarded = World::with_flow("guard = { max_create = 1 }\n");
    let held = guarded.muster(&["plan", "--detailed-exitcode"]);
    assert_eq!(held.status.code(), Some(3), "{}", text(&held));
    assert!(
        String::from_utf8_lossy(&held.stdout).contains("Over the guard's thresholds"),
        "{}",
        text(&held)
    );
}

/// A flow owning a field its target cannot store stops at load, exit 2,
/// naming the flow, the field and the target — nothing is read or written.
#[test]
fn a_field_the_target_cannot_store_is_a_configuration_error() {
    let world = World::with_flow("fields = [\"work_email\", \"login\"]\n");
    let out = world.muster(&["plan"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(out.stdout.is_empty(), "{}", text(&out));
    assert!(
        world.lucca.request_log().records.is_empty(),
        "Lucca was read"
    );
    let stderr = world.redact(&String::from_utf8_lossy(&out.stderr));
    insta::assert_snapshot!("config_field_not_stored", stderr);
}

/// Leapsome drops a phone, a contract type and a legal entity (its published user schema has
/// none), so its plugin does not declare them: a Lucca → Leapsome flow listing one in `fields`
/// stops at load, exit 2, naming the field, where it is listed and the target.
#[test]
fn a_leapsome_flow_owning_a_field_leapsome_drops_is_a_configuration_error() {
    for field in ["phone", "contract_type", "legal_entity_id"] {
        let world = World::with_flow(&format!("fields = [\"work_email\", \"{field}\"]\n"));
        let out = world.muster(&["plan"]);
        assert_eq!(out.status.code(), Some(2), "{field}: {}", text(&out));
        assert!(
            world.lucca.request_log().records.is_empty(),
            "{field}: Lucca was read"
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        let named = format!(
            "`flows.people.fields[1]`: flow `people` owns `{field}`, but its target `leapsome` \
             (plugin leapsome) cannot store it"
        );
        assert!(stderr.contains(&named), "{field}: {stderr}");
        let stores = stderr
            .split_once("that target stores: ")
            .map(|(_, list)| list.trim_end().trim_end_matches(')'))
            .unwrap_or_else(|| panic!("{field}: no stored list in {stderr}"));
        assert!(
            !stores.split(", ").any(|f| f == field),
            "{field} is listed as stored: {stores}"
        );
    }
}

/// A failed run is reported once — not as a log line and again as the
/// error — and the request's long URL is shortened.
#[test]
fn a_failed_run_is_printed_once_with_a_short_url() {
    let world = World::new();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let dead = format!("http://{}", closed.local_addr().expect("addr"));
    drop(closed);
    let config = std::fs::read_to_string(world.dir.path().join("muster.toml")).expect("config");
    let config = config.replace(&world.lucca.base_url(), &dead);
    std::fs::write(world.dir.path().join("muster.toml"), config).expect("config");
    let out = world.muster(&["plan"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr).replace(&dead, "[DEAD]");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(stderr.contains("[DEAD]/api/v3/users?…"), "{stderr}");
    assert!(!stderr.contains("fields="), "{stderr}");
}

/// Training rows (`e_title`, `e_score`) as Lucca stores a compound field.
fn trainings(rows: &[(&str, u32)]) -> Vec<muster_sandbox::Occurrence> {
    rows.iter()
        .enumerate()
        .map(|(i, (title, score))| muster_sandbox::Occurrence {
            id: 9000 + i as u64,
            value: serde_json::json!({ "e_title": title, "e_score": score }),
        })
        .collect()
}

/// Compound rows through the real Lucca plugin on both sides (Lucca →
/// Lucca, the shape of Cards' write-back): with `row_keys`, rows in another
/// order plan nothing, and a difference reads as rows — not one opaque
/// `e_formation` change. The store remembers no row this flow wrote, so
/// the target's rows are not its own: "Old course" is not removed, and
/// "Security", whose score differs, is reported rather than changed.
#[test]
fn compound_rows_plan_as_rows_under_their_key() {
    let start = |tenant| {
        let options = LuccaOptions {
            rate_limit: None,
            ..LuccaOptions::default()
        };
        LuccaSim::start(tenant, options).expect("start lucca")
    };
    let tenant = Tenant::generate(11, 12);
    let (source, target) = (start(tenant.clone()), start(tenant));
    let set = |sim: &LuccaSim, per_user: &[Vec<muster_sandbox::Occurrence>]| {
        sim.with_tenant(|t| {
            for (i, u) in t.users.iter_mut().enumerate() {
                u.extended.clear();
                if let Some(rows) = per_user.get(i) {
                    u.extended.insert("e_formation".into(), rows.clone());
                }
            }
        })
    };
    // First person: the same rows, in another order. Second: a score
    // changes, a row is added, one removed.
    set(
        &source,
        &[
            trainings(&[("GDPR", 80), ("Security", 60)]),
            trainings(&[("Security", 75), ("GDPR basics", 10)]),
        ],
    );
    set(
        &target,
        &[
            trainings(&[("Security", 60), ("GDPR", 80)]),
            trainings(&[("Old course", 5), ("Security", 60)]),
        ],
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let config = format!(
        r#"[tenant]
name = "rows"
timezone = "Europe/Paris"
state = "state.db"
cache = "{cache}"

[connections.cards]
plugin = "lucca"
settings = {{ base_url = "{source}", custom_fields = "e_formation" }}
secret = {{ env = "SOURCE_KEY" }}
allow_loopback = true

[connections.lucca]
plugin = "lucca"
settings = {{ base_url = "{target}", custom_fields = "e_formation" }}
secret = {{ env = "TARGET_KEY" }}
allow_loopback = true

[flows.trainings]
source = "cards"
target = "lucca"
actions = ["link", "update"]
fields = ["custom:e_formation"]
row_keys = {{ e_formation = "e_title" }}
options = {{ sync_groups = false }}
"#,
        cache = cache_dir().display(),
        source = source.base_url(),
        target = target.base_url(),
    );
    std::fs::write(dir.path().join("muster.toml"), config).expect("config");
    let out = Command::new(env!("CARGO_BIN_EXE_muster"))
        .args(["plan", "--config"])
        .arg(dir.path().join("muster.toml"))
        .env("MUSTER_TODAY", TODAY)
        .env("SOURCE_KEY", source.api_key())
        .env("TARGET_KEY", target.api_key())
        .env_remove("RUST_LOG")
        .output()
        .expect("run muster");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let updates: Vec<&str> = stdout
        .split("\nupdate (")
        .nth(1)
        .unwrap_or_else(|| panic!("no update in\n{stdout}"))
        .lines()
        .take(4)
        .collect();
    assert_eq!(
        updates[0], "1):",
        "only the second person differs:\n{stdout}"
    );
    assert_eq!(
        &updates[2..],
        [
            "      because source wins on owned fields",
            "      e_formation: + row \"GDPR basics\" (e_score 10)",
        ],
        "{stdout}"
    );
    assert!(
        stdout.contains("because `e_formation` has a row with `e_title` \"Security\" that this flow did not write"),
        "{stdout}"
    );
    let json = Command::new(env!("CARGO_BIN_EXE_muster"))
        .args(["plan", "--json", "--config"])
        .arg(dir.path().join("muster.toml"))
        .env("MUSTER_TODAY", TODAY)
        .env("SOURCE_KEY", source.api_key())
        .env("TARGET_KEY", target.api_key())
        .output()
        .expect("run muster");
    let plan: serde_json::Value = serde_json::from_slice(&json.stdout).expect("plan JSON");
    let update = plan["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .find(|s| s["kind"] == "update")
        .expect("an update");
    assert!(update.get("changes").is_none(), "{update:#}");
    let ops: Vec<&str> = update["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| r["action"]["op"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(ops, ["add"], "{update:#}");
    assert!(
        target
            .request_log()
            .records
            .iter()
            .all(|r| r.method == "GET")
    );
}
