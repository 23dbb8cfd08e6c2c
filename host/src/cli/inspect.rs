//! `muster plugin inspect FILE.wasm`: what a plugin is and asks for.

use super::Outcome;
use crate::runtime::contract::latest::field_ref_to_core;
use crate::runtime::{ContractVersion, FieldRef, Manifest, PluginError, Runtime, RuntimeConfig};

/// Loads the plugin with no network, asks it to describe itself and renders
/// the manifest, with the contract version the component speaks and that
/// this host supports it. A component of an unsupported contract version
/// cannot be called, so only its version is shown, then reported as the
/// command's error: the operator sees both what it is and why this host will
/// not run it.
pub fn inspect(file: &std::path::Path) -> Outcome {
    let described = Runtime::new(RuntimeConfig::default())
        .and_then(|runtime| runtime.load_file(file))
        .and_then(|plugin| {
            let digest = plugin.digest().to_owned();
            Ok((plugin.describe()?, plugin.contract_version(), digest))
        });
    match described {
        Ok((manifest, version, digest)) => {
            Outcome::ok(render_manifest(&manifest, version, &digest))
        }
        Err(e) => {
            let PluginError::UnsupportedContract { version, supported } = &e else {
                return Outcome::failed(1, e.to_string());
            };
            let text = format!(
                "contract version: {version}, not supported by this host (supports {supported})\n"
            );
            Outcome::ok(text).with_error(1, e.to_string())
        }
    }
}

/// Human-readable manifest, one fact per line.
pub fn render_manifest(m: &Manifest, version: ContractVersion, digest: &str) -> String {
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
    let _ = writeln!(
        out,
        "contract version: {version}, supported by this host (supports {})",
        ContractVersion::supported_list()
    );
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
    out.push_str(&render_declarations(m));
    out
}

/// What the plugin declares about its vendor (from the 0.2 manifest, or a
/// 0.1 plugin's `muster:declarations` section): the fields a flow may own
/// against it, what a create carries, how fast it may go and how many
/// members one change may carry.
fn render_declarations(m: &Manifest) -> String {
    let names = |fields: &[FieldRef]| -> Vec<String> {
        fields
            .iter()
            .map(|f| match f {
                FieldRef::Custom(code) if code == "*" => "custom:*".to_owned(),
                f => String::from(field_ref_to_core(f)),
            })
            .collect()
    };
    let stores = match &m.stores {
        None => "(not declared: any field)".to_owned(),
        Some(fields) => names(fields).join(", "),
    };
    let required = names(&m.create_requires);
    let required = if required.is_empty() {
        "(none)".to_owned()
    } else {
        required.join(", ")
    };
    let limits: Vec<String> = m
        .rate_limits
        .iter()
        .map(|r| format!("{}: {} / {} s", r.host, r.requests, r.per_seconds))
        .collect();
    let limits = if limits.is_empty() {
        "(none)".to_owned()
    } else {
        limits.join(", ")
    };
    format!(
        "stores:           {stores}\ncreate requires:  {required}\nrate limits:      {limits}\nmembers/change:   {}\n",
        m.max_members_per_change
    )
}
