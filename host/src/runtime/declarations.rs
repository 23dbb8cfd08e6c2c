//! What a plugin declares about its vendor, outside the frozen 0.1.0 WIT
//! contract: which fields the target stores and which a create requires.
//!
//! The contract's `manifest` has no place for these facts (contract 0.2.0 will
//! carry them natively), so a 0.1 plugin ships them in a **wasm custom
//! section** named [`SECTION`], emitted by the SDK's `muster_sdk::declare!`
//! macro. Custom sections are data, not code: the component's imports,
//! exports and behaviour are unchanged, an older host ignores the section,
//! and this host reads it from the component bytes with `wasmparser` when the
//! plugin is loaded, before any instance exists. The section lives in the
//! embedded core module and survives componentization.
//!
//! Format (UTF-8 text, one declaration per line, words separated by spaces):
//!
//! ```text
//! muster-declarations 1
//! stores given-name family-name work-email custom:*
//! create-requires work-email
//! ```
//!
//! Field names use the contract's spelling (`given-name`, `custom:<code>`,
//! `custom:*` for every custom field). A line with an unknown keyword is
//! ignored (a newer SDK may declare more); an unknown field name is an error,
//! so a plugin author's typo fails at the first load instead of silently
//! narrowing what a flow may own. A plugin without the section declares
//! nothing: no restriction, the behaviour of third-party 0.1 plugins.

use muster_core::{FieldRef, FieldSet};

use super::PluginError;
use super::bindings::{FieldRef as WitFieldRef, Manifest};
use super::contract::latest::{field_ref_to_core, parse_field_ref};

/// Name of the custom section holding a plugin's declarations.
pub const SECTION: &str = "muster:declarations";

/// The header line's keyword; the word after it is the format version.
const HEADER: &str = "muster-declarations";

/// What a plugin declares about its vendor. A 0.2 manifest carries it
/// natively; a 0.1 plugin's section is folded into its (adapted) manifest at
/// instantiation, so [`Declarations::from_manifest`] serves both.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Declarations {
    /// Fields the target stores; `None` when the plugin does not say (no
    /// restriction).
    pub stores: Option<Stored>,
    /// Fields a create must carry (e.g. SCIM's `userName` from `login`).
    pub create_requires: FieldSet,
}

/// A set of stored fields: canonical and named custom ones, or every custom
/// field (`custom:*`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stored {
    pub fields: FieldSet,
    pub any_custom: bool,
}

impl Stored {
    /// Whether the target can store `field`.
    pub fn contains(&self, field: &FieldRef) -> bool {
        match field {
            FieldRef::Custom(_) if self.any_custom => true,
            _ => self.fields.contains(field),
        }
    }
}

impl Declarations {
    /// Whether the target stores `field` (always, when it does not say).
    pub fn stores(&self, field: &FieldRef) -> bool {
        self.stores.as_ref().is_none_or(|s| s.contains(field))
    }

    /// The declarations of a manifest (of any contract version: a 0.1
    /// plugin's manifest carries its section's, see
    /// [`super::contract::v0_1::manifest`]). `custom("*")` in `stores`
    /// stands for every custom field.
    pub fn from_manifest(manifest: &Manifest) -> Declarations {
        let stores = manifest.stores.as_ref().map(|fields| {
            let mut stored = Stored::default();
            for f in fields {
                match f {
                    WitFieldRef::Custom(code) if code == "*" => stored.any_custom = true,
                    f => stored.fields.insert(field_ref_to_core(f)),
                }
            }
            stored
        });
        Declarations {
            stores,
            create_requires: manifest
                .create_requires
                .iter()
                .map(field_ref_to_core)
                .collect(),
        }
    }

    /// Reads the declarations of a component (or core module). No section:
    /// the empty, unrestricting [`Declarations::default`].
    pub fn from_wasm(wasm: &[u8]) -> Result<Declarations, PluginError> {
        match section(wasm)? {
            Some(text) => Declarations::parse(&text),
            None => Ok(Declarations::default()),
        }
    }

    /// Parses the section's text (see the module documentation).
    pub fn parse(text: &str) -> Result<Declarations, PluginError> {
        let mut lines = text
            .lines()
            .map(str::trim)
            .enumerate()
            .filter(|(_, l)| !l.is_empty());
        match lines
            .next()
            .map(|(_, l)| l.split_whitespace().collect::<Vec<_>>())
        {
            Some(words) if words == [HEADER, "1"] => {}
            other => {
                return Err(invalid(format!(
                    "expected the header `{HEADER} 1`, found {:?}",
                    other.map(|w| w.join(" ")).unwrap_or_default()
                )));
            }
        }
        let mut out = Declarations::default();
        for (i, line) in lines {
            let mut words = line.split_whitespace();
            match words.next() {
                Some("stores") => {
                    let stored = out.stores.get_or_insert_with(Stored::default);
                    for word in words {
                        if word == "custom:*" {
                            stored.any_custom = true;
                        } else {
                            stored.fields.insert(field(word, i + 1)?);
                        }
                    }
                }
                Some("create-requires") => {
                    for word in words {
                        out.create_requires.insert(field(word, i + 1)?);
                    }
                }
                _ => {}
            }
        }
        Ok(out)
    }
}

/// A field in contract spelling (`given-name`, `custom:e_x`).
fn field(word: &str, line: usize) -> Result<FieldRef, PluginError> {
    parse_field_ref(word)
        .map(|f| field_ref_to_core(&f))
        .ok_or_else(|| invalid(format!("line {line}: unknown field `{word}`")))
}

fn invalid(message: String) -> PluginError {
    PluginError::InvalidComponent(format!("custom section `{SECTION}`: {message}"))
}

/// The text of the first [`SECTION`] custom section, at any nesting depth
/// (a component's core modules included).
fn section(wasm: &[u8]) -> Result<Option<String>, PluginError> {
    use wasmparser::{Parser, Payload};
    for payload in Parser::new(0).parse_all(wasm) {
        let payload = payload.map_err(|e| PluginError::InvalidComponent(e.to_string()))?;
        if let Payload::CustomSection(reader) = payload
            && reader.name() == SECTION
        {
            let text = std::str::from_utf8(reader.data())
                .map_err(|e| invalid(format!("not UTF-8: {e}")))?;
            return Ok(Some(text.to_owned()));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::Field as WitField;
    use muster_core::Field;

    #[test]
    fn parses_stored_and_required_fields() {
        let d = Declarations::parse(
            "muster-declarations 1\nstores given-name login custom:*\n\ncreate-requires login\nrate-limit 30/1s\n",
        )
        .unwrap();
        assert!(d.stores(&FieldRef::Canonical(Field::GivenName)));
        assert!(d.stores(&FieldRef::Custom("e_anything".into())));
        assert!(!d.stores(&FieldRef::Canonical(Field::BirthDate)));
        assert!(d.create_requires.has(Field::Login));
    }

    #[test]
    fn a_manifest_declares_the_same_facts() {
        let d = Declarations::parse(
            "muster-declarations 1\nstores given-name login custom:*\ncreate-requires login\n",
        )
        .unwrap();
        let manifest = Manifest {
            name: "x".into(),
            version: "1".into(),
            description: String::new(),
            capabilities: vec![],
            config_keys: vec![],
            hosts: vec![],
            credential_slots: vec![],
            rate_limits: vec![],
            stores: Some(vec![
                WitFieldRef::Canonical(WitField::GivenName),
                WitFieldRef::Canonical(WitField::Login),
                WitFieldRef::Custom("*".into()),
            ]),
            create_requires: vec![WitFieldRef::Canonical(WitField::Login)],
            max_members_per_change: 1,
        };
        assert_eq!(Declarations::from_manifest(&manifest), d);
    }

    #[test]
    fn nothing_declared_restricts_nothing() {
        let d = Declarations::default();
        assert!(d.stores(&FieldRef::Canonical(Field::BirthDate)));
        assert!(d.create_requires.iter().next().is_none());
    }

    #[test]
    fn bad_declarations_name_the_section_and_the_word() {
        let e = Declarations::parse("muster-declarations 1\nstores given-nam\n").unwrap_err();
        let text = e.to_string();
        assert!(text.contains(SECTION) && text.contains("line 2") && text.contains("given-nam"));
        assert!(Declarations::parse("stores login").is_err());
    }

    #[test]
    fn a_component_without_the_section_declares_nothing() {
        // The smallest component: magic and the component-model version/layer.
        let component = b"\0asm\x0d\0\x01\0";
        assert_eq!(
            Declarations::from_wasm(component).unwrap(),
            Declarations::default()
        );
    }
}
