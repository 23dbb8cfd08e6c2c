//! The `muster-sandbox` binary: prints the URL and key, writes the config, exits with `--once`.

use std::process::Command;

#[test]
fn once_prints_url_and_key_and_writes_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_muster-sandbox"))
        .args(["--employees", "5", "--once", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("lucca: http://127.0.0.1:"), "{stdout}");
    assert!(stdout.contains("export LUCCA_API_KEY="), "{stdout}");
    let config = std::fs::read_to_string(dir.path().join("muster.sandbox.toml")).unwrap();
    assert!(config.contains("[connections.lucca]"));
    assert!(config.contains("plugin = \"lucca\""));
    assert!(config.contains("settings = { base_url = \"http://127.0.0.1:"));
    assert!(config.contains("secret = { env = \"LUCCA_API_KEY\" }"));
    assert!(stdout.contains("cards: http://127.0.0.1:"), "{stdout}");
    assert!(stdout.contains("export CARDS_API_TOKEN="), "{stdout}");
    assert!(config.contains("[flows.lucca-to-cards]"));
}
