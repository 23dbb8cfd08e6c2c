//! `muster plugin inspect`, through the real binary, on every fixture.

use std::process::Command;

fn muster(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_muster"))
        .args(args)
        .output()
        .expect("run muster")
}

#[test]
fn inspect_prints_the_manifest_of_every_fixture() {
    let cases = [
        (
            muster::plugins::fixture_good(),
            "fixture-good",
            "read-people, read-groups, read-accounts, write-accounts",
            "token: Authorization: Bearer {secret}",
        ),
        (
            muster::plugins::fixture_misbehave(),
            "fixture-misbehave",
            "read-people",
            "api-key: Authorization: Bearer {secret}",
        ),
    ];
    for (path, name, capabilities, slot) in cases {
        let out = muster(&["plugin", "inspect", path.to_str().unwrap()]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.contains(&format!("name:             {name}\n")),
            "{stdout}"
        );
        assert!(
            stdout.contains(
                "contract version: 0.2.0, supported by this host (supports 0.1.0, 0.2.0)\n"
            ),
            "{stdout}"
        );
        assert!(
            stdout.contains(&format!("capabilities:     {capabilities}\n")),
            "{stdout}"
        );
        assert!(
            stdout.contains("hosts:            http://127.0.0.1:*\n"),
            "{stdout}"
        );
        assert!(stdout.contains(slot), "{stdout}");
        assert!(stdout.contains("version:"), "{stdout}");
    }
}

#[test]
fn inspect_shows_what_a_plugin_declares_and_a_plugin_that_declares_nothing() {
    let scim = muster::plugins::path("muster-plugin-scim");
    let out = muster(&["plugin", "inspect", scim.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("create requires:  login\n"), "{stdout}");
    let stores = stdout
        .lines()
        .find_map(|l| l.strip_prefix("stores:"))
        .expect("a stores line");
    assert!(
        stores.contains("given_name") && !stores.contains("birth_date"),
        "{stdout}"
    );

    let good = muster::plugins::fixture_good();
    let out = muster(&["plugin", "inspect", good.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("stores:           (not declared: any field)\n"),
        "{stdout}"
    );
    assert!(stdout.contains("create requires:  (none)\n"), "{stdout}");
}

#[test]
fn inspect_fails_cleanly_on_a_non_plugin() {
    let out = muster(&[
        "plugin",
        "inspect",
        concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).starts_with("error: not a valid plugin component")
    );
    let missing = muster(&["plugin", "inspect", "/nonexistent/plugin.wasm"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/plugin.wasm"));
}

#[test]
fn inspect_refuses_an_incompatible_contract() {
    let path = muster::plugins::fixture_future();
    let out = muster(&["plugin", "inspect", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("incompatible plugin") && stderr.contains("0.3.0"),
        "{stderr}"
    );
    // The version the component speaks is still shown, and why it is refused.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout,
        "contract version: 0.3.0, not supported by this host (supports 0.1.0, 0.2.0)\n"
    );
}

#[test]
fn usage_errors_exit_with_2() {
    assert_eq!(muster(&["plugin"]).status.code(), Some(2));
    assert_eq!(muster(&["frobnicate"]).status.code(), Some(2));
}
