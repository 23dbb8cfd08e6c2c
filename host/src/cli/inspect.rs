//! `muster plugin inspect FILE.wasm`: what a plugin is and asks for.

use super::Outcome;
use crate::runtime::{Declarations, Manifest, Runtime, RuntimeConfig, check_contract};

/// Loads the plugin with no network, asks it to describe itself and renders
/// the manifest. An incompatible contract version is shown, then reported as
/// the command's error, so the operator sees both what the plugin is and why
/// this host will not run it.
pub fn inspect(file: &std::path::Path) -> Outcome {
    let described = Runtime::new(RuntimeConfig::default())
        .and_then(|runtime| runtime.load_file(file))
        .and_then(|plugin| {
            let declarations = plugin.declarations().clone();
            Ok((plugin.describe()?, plugin.digest().to_owned(), declarations))
        });
    let (manifest, digest, declarations) = match described {
        Ok(d) => d,
        Err(e) => return Outcome::failed(1, e.to_string()),
    };
    let mut text = render_manifest(&manifest, &digest);
    text.push_str(&render_declarations(&declarations));
    let out = Outcome::ok(text);
    match check_contract(&manifest.contract_version) {
        Ok(()) => out,
        Err(e) => out.with_error(1, e.to_string()),
    }
}

/// Human-readable manifest, one fact per line.
pub fn render_manifest(m: &Manifest, digest: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let list = |items: Vec<String>| {
        if items.is_empty() {
            "(none)".to_string()
        } else {
            items.join(", ")
        }
    };
    let _ = writeln!(out, "name:             {}", m.name);
    let _ = writeln!(out, "version:          {}", m.version);
    let _ = writeln!(out, "contract version: {}", m.contract_version);
    let _ = writeln!(out, "description:      {}", m.description);
    let _ = writeln!(out, "sha256:           {digest}");
    let _ = writeln!(
        out,
        "capabilities:     {}",
        list(m.capabilities.iter().map(|c| c.to_string()).collect())
    );
    let _ = writeln!(out, "hosts:            {}", list(m.hosts.clone()));
    let _ = writeln!(
        out,
        "config keys:{}",
        if m.config_keys.is_empty() {
            "      (none)"
        } else {
            ""
        }
    );
    for k in &m.config_keys {
        let _ = writeln!(
            out,
            "  {}{} — {}",
            k.name,
            if k.required { " (required)" } else { "" },
            k.description
        );
    }
    let _ = writeln!(
        out,
        "credential slots:{}",
        if m.credential_slots.is_empty() {
            " (none)"
        } else {
            ""
        }
    );
    for s in &m.credential_slots {
        let _ = writeln!(
            out,
            "  {}: {}: {} — {}",
            s.name, s.header, s.template, s.description
        );
    }
    out
}

/// What the plugin declares about its vendor (the `muster:declarations`
/// section): the fields a flow may own against it and what a create carries.
pub fn render_declarations(d: &Declarations) -> String {
    let stores = match &d.stores {
        None => "(not declared: any field)".to_owned(),
        Some(s) => {
            let mut names: Vec<String> = s.fields.iter().map(String::from).collect();
            if s.any_custom {
                names.push("custom:*".into());
            }
            names.join(", ")
        }
    };
    let required: Vec<String> = d.create_requires.iter().map(String::from).collect();
    let required = if required.is_empty() {
        "(none)".to_owned()
    } else {
        required.join(", ")
    };
    format!("stores:           {stores}\ncreate requires:  {required}\n")
}
