//! `cargo demo cards`: Lucca → Cards, the Cards integration's "import all", "import one"
//! and department groups, on the Lucca and Cards simulators.
//!
//! 1. a Cards space that already has a hand-made group ("Book club") with a Lucca employee
//!    (same e-mail) and an outside consultant in it;
//! 2. plan and apply "import all": accounts matched by professional e-mail only, the
//!    existing user linked, departments as groups;
//! 3. a day in HR: a hire, a leaver, a department change; the hire imported alone first
//!    (`muster sync --only ID`), then the whole flow;
//! 4. a last sync has nothing to do; the hand-made group never changed.
//!
//! Lucca's 50 requests / 60 s limit is on (a 300-person import reads one page of users);
//! Cards' simulated limit is off so the demo does not wait on it in real time (the test
//! `tests/lucca_to_cards.rs` and `examples/lucca_cards_import.rs` run with both on).

use std::path::{Path, PathBuf};

use muster::engine;
use muster::runtime::MemoryLog;
use muster_sandbox::{CardsOptions, CardsSim, CardsUser, LuccaOptions, LuccaSim, Space, Tenant};

use super::{Demo, DemoResult, PEOPLE, SEED, TODAY, demo_dir, excerpt, header, result};

const FLOW: &str = "lucca-to-cards";
const HAND_MADE: &str = "Book club";

pub fn demo() -> DemoResult<()> {
    println!("muster demo: importing a simulated Lucca into a simulated Cards, on this machine.");
    let tenant = Tenant::generate(SEED, PEOPLE);
    let existing = tenant
        .users
        .iter()
        .find(|u| {
            u.mail.is_some()
                && u.dt_contract_end.is_none()
                && u.dt_contract_start.as_deref().is_some_and(|s| s < TODAY)
        })
        .ok_or("the generated tenant has no current employee with an e-mail")?
        .clone();
    let existing_mail = existing.mail.clone().unwrap_or_default();
    let mut space = Space::new();
    let club = space.add_group(HAND_MADE);
    for mut user in [
        CardsUser::new(&existing.first_name, &existing.last_name, &existing_mail),
        CardsUser::new("Camille", "Conseil", "camille@partner.example"),
    ] {
        user.groups = vec![club];
        space.add_user(user);
    }
    let lucca = LuccaSim::start(tenant, LuccaOptions::default())?;
    let cards = CardsSim::start(CardsOptions {
        rate_limit: None,
        space,
        ..CardsOptions::default()
    })?;
    let dir = demo_dir().join("cards");
    let config_path = write_config(&dir, &lucca, &cards)?;
    println!(
        "  Lucca   {}  {PEOPLE} people (seed {SEED})",
        lucca.base_url()
    );
    println!(
        "  Cards   {}  a hand-made group \"{HAND_MADE}\": {existing_mail} and camille@partner.example",
        cards.base_url()
    );
    println!("  config  {}", config_path.display());

    let mut demo = Demo::new(&config_path, FLOW, MemoryLog::new())?;
    header("1. Import all: the plan (matched by professional e-mail only)");
    let plan = demo.run(engine::Mode::Plan)?;
    print!("{}", excerpt(&plan, |_| 3));

    header("2. Apply it");
    let applied = demo.sync()?;
    print!("{}", result(&applied));
    let space = cards.space();
    println!(
        "Cards now has {} users and {} groups; {} welcome e-mails were sent.",
        space.users.len(),
        space.groups.len(),
        cards.notifications().len()
    );

    header("3. A day in HR: a hire, a leaver, a department change");
    let hire = change_tenant(&lucca, &existing.id)?;
    header("4. Import one: the hire alone (`muster sync --only ID`)");
    let one = demo.sync_only(Some(hire.to_string()))?;
    print!("{}", excerpt(&one.0, |_| usize::MAX));
    print!("{}", result(&one));

    header("5. The whole flow: the leaver and the move");
    let day = demo.sync()?;
    print!(
        "{}",
        excerpt(&day.0, |kind| match kind {
            muster_core::ActionKind::Skip | muster_core::ActionKind::Conflict => 2,
            _ => usize::MAX,
        })
    );
    print!("{}", result(&day));

    header("6. Sync once more: Cards matches Lucca");
    let again = demo.sync()?;
    print!("{}", result(&again));
    if again.0.outcome != engine::Outcome::NoChanges {
        return Err("the last sync still had changes to apply".into());
    }
    let space = cards.space();
    let club = space
        .group_by_name(HAND_MADE)
        .ok_or("the hand-made group is gone")?;
    let members: Vec<String> = space
        .users
        .values()
        .filter(|u| u.groups.contains(&club.id))
        .filter_map(|u| u.email.clone())
        .collect();
    println!("\"{HAND_MADE}\" still holds: {}", members.join(", "));
    if !space.deleted.is_empty() {
        return Err("a Cards user was deleted".into());
    }
    Ok(())
}

fn write_config(dir: &Path, lucca: &LuccaSim, cards: &CardsSim) -> DemoResult<PathBuf> {
    std::fs::create_dir_all(dir)?;
    for name in ["state.db", "state.db-wal", "state.db-shm"] {
        match std::fs::remove_file(dir.join(name)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
            _ => {}
        }
    }
    std::fs::write(dir.join("lucca.key"), lucca.api_key())?;
    std::fs::write(dir.join("cards.token"), cards.token())?;
    let config = format!(
        r#"# Written by `cargo demo cards` for simulators on loopback; see docs/config.md.
[tenant]
name = "demo-cards"
timezone = "Europe/Paris"
state = "state.db"
cache = "../plugin-cache"

[connections.lucca]
plugin = "lucca"
settings = {{ base_url = "{lucca}" }}
secret = {{ file = "lucca.key" }}
allow_loopback = true

[connections.cards]
plugin = "cards"
settings = {{ base_url = "{cards}", tenant = "{tenant}", notify_created_users = "yes", connection_mode = "sso" }}
secret = {{ file = "cards.token" }}
allow_loopback = true

[flows.{FLOW}]
source = "lucca"
target = "cards"
schedule = "daily 02:00"
correlation = ["work_email"]
options = {{ sync_groups = true, reactivate = true }}
"#,
        lucca = lucca.base_url(),
        cards = cards.base_url(),
        tenant = cards.tenant(),
    );
    let path = dir.join("muster.toml");
    std::fs::write(&path, config)?;
    Ok(path)
}

/// A hire (returned), a leaver and a department change, printed for the reader. The
/// employee already in Cards is left alone.
fn change_tenant(lucca: &LuccaSim, keep: &u64) -> DemoResult<u64> {
    lucca.with_tenant(|t| -> DemoResult<u64> {
        let current: Vec<u64> = t
            .users
            .iter()
            .filter(|u| {
                u.id != *keep
                    && u.mail.is_some()
                    && u.dt_contract_end.is_none()
                    && u.dt_contract_start.as_deref().is_some_and(|s| s < TODAY)
            })
            .map(|u| u.id)
            .collect();
        let (&leaver, &mover) = current
            .first()
            .zip(current.last())
            .ok_or("not enough current employees")?;
        let template = t.user(leaver).ok_or("leaver")?.clone();
        let id = t.take_user_id();
        let mut hire = template.clone();
        hire.id = id;
        hire.first_name = "Margaux".into();
        hire.last_name = "Lemaire".into();
        hire.login = "mlemaire".into();
        hire.mail = Some("margaux.lemaire@sandbox.example".into());
        hire.employee_number = Some(format!("{:05}", PEOPLE + 1));
        hire.dt_contract_start = Some(format!("{TODAY}T00:00:00"));
        t.users.push(hire);
        println!("  - hire: Margaux Lemaire (Lucca id {id}) starts today");
        let l = t.user_mut(leaver).ok_or("leaver")?;
        l.dt_contract_end = Some("2026-05-31T00:00:00".into());
        println!(
            "  - leaver: {} {} (Lucca id {leaver}), contract ended yesterday",
            l.first_name, l.last_name
        );
        let target_dept = template.department_id;
        let m = t.user_mut(mover).ok_or("mover")?;
        m.department_id = target_dept;
        let (name, mover_name) = (
            target_dept
                .and_then(|d| t.department(d))
                .map(|d| d.name.clone())
                .unwrap_or_default(),
            t.user(mover)
                .map(|u| format!("{} {}", u.first_name, u.last_name))
                .unwrap_or_default(),
        );
        println!("  - move: {mover_name} (Lucca id {mover}) joins {name}");
        Ok(id)
    })
}
