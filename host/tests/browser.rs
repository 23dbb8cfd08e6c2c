//! The admin pages in a real browser: headless Chromium driven through
//! chromedriver (WebDriver, with the `fantoccini` client), against the real
//! `muster serve` with `[serve] admins`, the real Lucca and Leapsome plugins
//! on the simulators and a real SQLite store whose guard held a plan.
//!
//! The admin signs in, finds a person the last runs skipped with the search
//! page, opens the held plan, approves it and sees the run succeed. Each
//! step's screenshot is saved under `target/screenshots/` (the admin guide,
//! `docs/admin.md`, shows copies of them from `docs/img/`).
//!
//! Chromium and chromedriver are required: `.ci/run` installs Debian's
//! `chromium` and `chromium-driver`. Without them this test fails, saying
//! what is missing; it never skips.

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::admin::{ADMIN, PASSWORD, deactivated, held_deactivations, held_world_with};
use common::world::FLOW;
use fantoccini::{Client, ClientBuilder, Locator};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A chromedriver process on a free loopback port, killed when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn require(path: &str, package: &str) {
    assert!(
        Path::new(path).exists(),
        "{path} is missing: install Debian's `{package}` (`apt-get install -y chromium chromium-driver`, as .ci/run does); \
         the browser test needs a real browser and never skips"
    );
}

fn start_driver() -> Driver {
    require(CHROMIUM, "chromium");
    require(CHROMEDRIVER, "chromium-driver");
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let driver = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    // Ready when it accepts connections (a generous bound: a loaded CI
    // machine); the session request then waits for the browser itself.
    let deadline = Instant::now() + Duration::from_secs(60);
    let addr = format!("127.0.0.1:{port}");
    while std::net::TcpStream::connect(&addr).is_err() {
        assert!(
            Instant::now() < deadline,
            "chromedriver did not listen on {addr} within a minute"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    driver
}

async fn browser(driver: &Driver, profile: &Path) -> Client {
    let args = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1200,1000",
        &format!("--user-data-dir={}", profile.display()),
    ];
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({ "binary": CHROMIUM, "args": args }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a Chromium session through chromedriver")
}

fn screenshots() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("target")
        .join("screenshots");
    std::fs::create_dir_all(&dir).expect("target/screenshots");
    dir
}

async fn shot(client: &Client, name: &str) {
    let png = client.screenshot().await.expect("a screenshot");
    assert!(png.starts_with(b"\x89PNG"), "{name}: not a PNG");
    std::fs::write(screenshots().join(format!("{name}.png")), png).expect("save screenshot");
}

/// The text of the first element `css` selects, waiting for it to appear:
/// a click that submits a form returns before the next page has loaded.
async fn text_of(client: &Client, css: &str) -> String {
    let found = client.wait().for_element(Locator::Css(css)).await;
    match found {
        Ok(element) => element.text().await.expect("its text"),
        Err(e) => {
            let url = client.current_url().await.map(|u| u.to_string());
            let page = client.source().await.unwrap_or_default();
            panic!("no `{css}` on {url:?}: {e}\n{page}")
        }
    }
}

#[test]
fn an_admin_approves_a_held_plan_in_a_real_browser() {
    // One person without a work email: every run skips them, and says why.
    let mut skipped = String::new();
    let world = held_world_with(|t| {
        // Nobody's manager, so only they are skipped.
        let managers: Vec<u64> = t.users.iter().filter_map(|u| u.manager_id).collect();
        let person = t
            .users
            .iter_mut()
            .find(|u| u.dt_contract_end.is_none() && u.mail.is_some() && !managers.contains(&u.id))
            .expect("an employee with an email who manages nobody");
        person.mail = None;
        skipped = format!("{} {}", person.first_name, person.last_name);
    });
    let before = deactivated(&world);
    let leaving = held_deactivations(&world);
    let serving = world.serve();
    let driver = start_driver();
    let profile = tempfile::tempdir().expect("a browser profile");
    let base = format!("http://{}", serving.addr);

    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    runtime.block_on(async {
        let client = browser(&driver, profile.path()).await;

        // Not signed in: the sign-in form.
        client.goto(&format!("{base}/")).await.expect("open /");
        let name = client
            .wait()
            .for_element(Locator::Css("input[name=name]"))
            .await
            .expect("sign-in form");
        shot(&client, "sign-in").await;
        name.send_keys(ADMIN).await.expect("type the name");
        client
            .wait()
            .for_element(Locator::Css("input[name=password]"))
            .await
            .expect("password field")
            .send_keys(PASSWORD)
            .await
            .expect("type the password");
        client
            .wait()
            .for_element(Locator::Css("button[type=submit]"))
            .await
            .expect("sign in")
            .click()
            .await
            .expect("click");

        // The status page, signed in: the held plan is announced.
        let who = text_of(&client, "form.who").await;
        assert!(who.contains(ADMIN), "{who}");
        let body = text_of(&client, "body").await;
        assert!(body.contains("is held since"), "{body}");
        shot(&client, "status-page").await;

        // "Why was this person not created?": the search form finds every
        // run that skipped them, with the reason.
        client
            .wait()
            .for_element(Locator::Css("input[name=q]"))
            .await
            .expect("the search form")
            .send_keys(&skipped)
            .await
            .expect("type the name");
        client
            .wait()
            .for_element(Locator::Css("form[action='/search'] button"))
            .await
            .expect("Search")
            .click()
            .await
            .expect("search");
        client
            .wait()
            .for_element(Locator::Css("tr.skip"))
            .await
            .unwrap_or_else(|e| panic!("no skip of `{skipped}` found: {e}"));
        let found = text_of(&client, "table").await;
        assert!(found.contains(&skipped), "{found}");
        assert!(
            found.contains("`work_email` is required to create an account"),
            "the reason names the field: {found}"
        );
        shot(&client, "search").await;
        client.goto(&format!("{base}/")).await.expect("back to /");

        client
            .wait()
            .for_element(Locator::LinkText("Review it, then approve or reject it"))
            .await
            .expect("the held plan's link")
            .click()
            .await
            .expect("open the held plan");
        client
            .wait()
            .for_element(Locator::Css("#digest"))
            .await
            .expect("the held plan's page");
        let mut groups = Vec::new();
        for h in client
            .find_all(Locator::Css("h3"))
            .await
            .expect("the plan's groups")
        {
            groups.push(h.text().await.expect("a group's heading"));
        }
        assert!(
            groups.contains(&format!("deactivate ({leaving}):")),
            "{groups:?}"
        );
        let digest = text_of(&client, "#digest").await;
        let held = world.store().held_plan(FLOW).expect("read").expect("held");
        assert_eq!(digest, held.snapshot_digest);
        shot(&client, "held-plan").await;

        client
            .wait()
            .for_element(Locator::Id("approve"))
            .await
            .expect("Approve")
            .click()
            .await
            .expect("approve");
        let outcome = text_of(&client, "#outcome").await;
        assert!(
            outcome.contains(&format!("Approved by {ADMIN}")),
            "{outcome}"
        );
        assert!(outcome.contains("ended done"), "{outcome}");
        shot(&client, "approved").await;

        // Back on the status page, the run that applied it is done.
        client
            .wait()
            .for_element(Locator::LinkText("Back to the status page"))
            .await
            .expect("link")
            .click()
            .await
            .expect("back");
        let body = text_of(&client, "body").await;
        assert!(!body.contains("is held since"), "{body}");
        let _ = client.close().await;
    });

    assert_eq!(deactivated(&world), before + leaving);
    let plan = world.store().held_plan(FLOW).expect("read");
    assert!(plan.is_none(), "{plan:?}");
    let runs = world.store().history(FLOW, 1).expect("history");
    assert_eq!(runs[0].status.as_str(), "done", "{runs:?}");
    let approved = world
        .store()
        .audit_log(FLOW, 10)
        .expect("audit")
        .into_iter()
        .find(|a| a.what == "approve_held")
        .expect("the approval is audited");
    assert_eq!(approved.after.expect("details")["approved_by"], ADMIN);
}
