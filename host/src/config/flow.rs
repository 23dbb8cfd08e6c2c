//! `[flows.NAME]` → [`Flow`]: the core's [`Policy`] and [`Mapping`], the
//! schedule and the webhook.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;

use muster_core::mapping::Rule;
use muster_core::{
    ActionKind, Allowed, CorrelationKey, Field, FieldRef, FieldSet, FieldValue, Guard,
    ManagerMatch, Mapping, Person, Policy, Template,
};
use toml::de::DeValue;

use super::reader::{Doc, Val, closest, join};
use super::{ConfigError, Connection, Flow, Listed, Webhook, parse_secret};
use crate::runtime::Declarations;
use crate::schedule::Schedule;

const FLOW_KEYS: &[&str] = &[
    "source",
    "target",
    "schedule",
    "actions",
    "fields",
    "correlation",
    "options",
    "guard",
    "required_on_create",
    "mapping",
    "webhook",
    "row_keys",
];

/// The person-level actions `actions = [...]` may name.
const ACTIONS: &[&str] = &["create", "link", "update", "deactivate", "reactivate"];

const CORRELATION: &[(&str, CorrelationKey)] = &[
    ("employee_number", CorrelationKey::EmployeeNumber),
    ("work_email", CorrelationKey::WorkEmail),
    ("personal_email", CorrelationKey::PersonalEmail),
    ("login", CorrelationKey::Login),
];

pub(super) fn parse_flow(
    v: &Val<'_, '_>,
    name: &str,
    connections: &BTreeMap<String, Connection>,
    base: &Path,
) -> Result<(Flow, Option<IdentityRef>), ConfigError> {
    let t = v.table(
        FLOW_KEYS,
        "{ source = \"lucca\", target = \"leapsome\", schedule = \"daily 02:00\" }",
    )?;
    let p = |k: &str| join(v.path, k);

    let connection = |key: &str, example: &str| -> Result<String, ConfigError> {
        let kp = p(key);
        let c = t.get(key, &kp).ok_or_else(|| t.missing(key, example))?;
        let s = c.str(example)?;
        if connections.contains_key(s) {
            return Ok(s.to_string());
        }
        let hint = closest(s, connections.keys().map(String::as_str))
            .map(|c| format!("did you mean `{c}`? "))
            .unwrap_or_default();
        let known = if connections.is_empty() {
            "no connection is defined".to_string()
        } else {
            format!(
                "defined connections: {}",
                connections.keys().cloned().collect::<Vec<_>>().join(", ")
            )
        };
        Err(c.error(format!(
            "unknown connection `{s}`; {hint}{known}; define it as `[connections.{s}]` with a `plugin`"
        )))
    };
    let source = connection("source", "\"lucca\"")?;
    let target = connection("target", "\"leapsome\"")?;

    let schedule_p = p("schedule");
    let schedule = match t.get("schedule", &schedule_p) {
        Some(s) => {
            let text = s.str("\"daily 02:00\"")?;
            Some(Schedule::parse(text).map_err(|e| s.error(e.to_string()))?)
        }
        None => None,
    };

    let mut policy = Policy::default();

    let actions_p = p("actions");
    let mut reactivate_listed = false;
    if let Some(a) = t.get("actions", &actions_p) {
        let example = "[\"create\", \"link\", \"update\", \"deactivate\", \"reactivate\"]";
        let items = a.str_list(example)?;
        if items.is_empty() {
            return Err(a.error(format!(
                "an empty action list makes a flow that does nothing; list what it may do, e.g. `actions = {example}`"
            )));
        }
        let mut allowed = Allowed {
            create: false,
            link: false,
            update: false,
            deactivate: false,
            reactivate: false,
        };
        for (i, (name, span)) in items.iter().enumerate() {
            let slot = match name.as_str() {
                "create" => &mut allowed.create,
                "link" => &mut allowed.link,
                "update" => &mut allowed.update,
                "deactivate" => &mut allowed.deactivate,
                "reactivate" => &mut allowed.reactivate,
                other => {
                    let hint = closest(other, ACTIONS.iter().copied())
                        .map(|c| format!("did you mean `{c}`? "))
                        .unwrap_or_default();
                    let extra = if other == "delete" {
                        "muster never deletes: accounts are deactivated. "
                    } else {
                        ""
                    };
                    return Err(v.doc.error(
                        &format!("{actions_p}[{i}]"),
                        span,
                        format!(
                            "unknown action `{other}`; {extra}{hint}actions are {}",
                            ACTIONS.join(", ")
                        ),
                    ));
                }
            };
            *slot = true;
        }
        reactivate_listed = allowed.reactivate;
        policy.allowed = allowed;
    }

    let fields_p = p("fields");
    let mut fields_listed = None;
    if let Some(f) = t.get("fields", &fields_p) {
        let listed = listed_fields(&f, "[\"given_name\", \"family_name\", \"work_email\"]")?;
        policy.owned = listed.iter().map(|l| l.field.clone()).collect();
        fields_listed = Some(listed);
    }
    let req_p = p("required_on_create");
    if let Some(f) = t.get("required_on_create", &req_p) {
        policy.required_on_create = field_set(&f, "[\"work_email\"]")?;
    }

    let row_keys_p = p("row_keys");
    if let Some(r) = t.get("row_keys", &row_keys_p) {
        policy.row_keys = parse_row_keys(&r, &policy.owned)?;
    }

    let corr_p = p("correlation");
    let mut identity = None;
    if let Some(c) = t.get("correlation", &corr_p) {
        let items = c.str_list("[\"employee_number\", \"work_email\"]")?;
        let (keys, links) = parse_correlation(v, name, &corr_p, &items)?;
        policy.correlation = keys;
        policy.identity_links = links.as_ref().map(|l| l.other.clone());
        identity = links;
    }

    let options_p = p("options");
    let mut reactivate_option = None;
    if let Some(o) = t.get("options", &options_p) {
        let ot = o.table(
            &[
                "invite_on_create",
                "reactivate",
                "pre_start_days",
                "deactivate_after_days",
                "sync_groups",
                "login_taken",
                "manager_match",
            ],
            "{ invite_on_create = true, reactivate = true }",
        )?;
        let k = |key: &str| join(&options_p, key);
        let (ic, re, ps, sg) = (
            k("invite_on_create"),
            k("reactivate"),
            k("pre_start_days"),
            k("sync_groups"),
        );
        if let Some(b) = ot.get("invite_on_create", &ic) {
            policy.invite_on_create = b.bool()?;
        }
        if let Some(b) = ot.get("reactivate", &re) {
            let on = b.bool()?;
            if on && !policy.allowed.reactivate {
                return Err(b.error(
                    "`reactivate = true` but the flow's `actions` do not include \"reactivate\": add it to `actions`, or drop this option",
                ));
            }
            reactivate_option = Some(on);
        }
        if let Some(n) = ot.get("pre_start_days", &ps) {
            let days = n.int("7")?;
            policy.pre_start_days = u16::try_from(days)
                .ok()
                .filter(|d| *d <= 366)
                .ok_or_else(|| n.error("expected a number of days from 0 to 366"))?;
        }
        let da = k("deactivate_after_days");
        if let Some(n) = ot.get("deactivate_after_days", &da) {
            let days = n.int("7")?;
            policy.deactivate_after_days = u16::try_from(days)
                .ok()
                .filter(|d| *d <= 366)
                .ok_or_else(|| {
                    n.error("expected a number of days from 0 to 366 (0: deactivate the day after the end date)")
                })?;
        }
        if let Some(b) = ot.get("sync_groups", &sg) {
            policy.sync_groups = b.bool()?;
        }
        let lt = k("login_taken");
        if let Some(v) = ot.get("login_taken", &lt) {
            policy.login_taken = match v.str("\"suffix\"")? {
                "suffix" => muster_core::LoginTaken::Suffix,
                "conflict" => muster_core::LoginTaken::Conflict,
                other => {
                    return Err(v.error(format!(
                        "unknown rule `{other}`; use \"suffix\" (zlefevre -> zlefevre2) or \"conflict\""
                    )));
                }
            };
        }
        if let Some(m) = ot.get("manager_match", &k("manager_match")) {
            policy.manager_match = match m.str("\"work_email\"")? {
                "source_id" => ManagerMatch::SourceId,
                "work_email" => ManagerMatch::WorkEmail,
                other => {
                    let hint = closest(other, ["source_id", "work_email"])
                        .map(|c| format!("did you mean `{c}`? "))
                        .unwrap_or_default();
                    return Err(m.error(format!(
                        "unknown manager_match `{other}`; {hint}it is `source_id` (the manager's id in the source, the default) or `work_email` (the manager's work email, matched to a target account)"
                    )));
                }
            };
        }
    }
    // Listing "reactivate" among the actions is asking for reactivations;
    // the option only exists to say so explicitly (or to turn it off while
    // keeping the action allowed for `--approve-held` runs).
    policy.reactivate = reactivate_option.unwrap_or(reactivate_listed);

    let guard_p = p("guard");
    if let Some(g) = t.get("guard", &guard_p) {
        policy.guard = parse_guard(&g)?;
    }

    let mapping_p = p("mapping");
    let mapping = match t.get("mapping", &mapping_p) {
        Some(m) => parse_mapping(&m)?,
        None => Mapping::default(),
    };

    let webhook_p = p("webhook");
    let webhook = match t.get("webhook", &webhook_p) {
        Some(w) => Some(parse_webhook(&w, base)?),
        None => None,
    };

    Ok((
        Flow {
            name: name.to_string(),
            source,
            target,
            schedule,
            policy,
            mapping,
            webhook,
            fields_listed,
        },
        identity,
    ))
}

/// Where a flow's `correlation` names another flow's links
/// (`"links:lucca-to-cards"`), checked once every flow is read
/// ([`check_identities`]).
pub(super) struct IdentityRef {
    flow: String,
    other: String,
    /// The dotted key of the entry, e.g. `flows.cards-to-lucca.correlation[0]`.
    key: String,
    span: Range<usize>,
}

/// The prefix of a `correlation` entry naming another flow's links.
const LINKS_PREFIX: &str = "links:";

/// A flow's correlation keys, and the other flow whose links come first
/// (`"links:<flow>"`, only as the first entry: established identities are
/// tried before any key) with where it was written.
fn parse_correlation(
    v: &Val<'_, '_>,
    flow: &str,
    corr_p: &str,
    items: &[(String, Range<usize>)],
) -> Result<(Vec<CorrelationKey>, Option<IdentityRef>), ConfigError> {
    let names: Vec<&str> = CORRELATION.iter().map(|(n, _)| *n).collect();
    let mut keys = Vec::with_capacity(items.len());
    let mut links = None;
    for (i, (name, span)) in items.iter().enumerate() {
        let at = format!("{corr_p}[{i}]");
        if let Some(other) = name.strip_prefix(LINKS_PREFIX) {
            if i != 0 {
                return Err(v.doc.error(
                    &at,
                    span,
                    format!(
                        "`{name}` must be the first correlation entry: the identities another flow established are tried before any key, e.g. `correlation = [\"{name}\", \"work_email\"]`"
                    ),
                ));
            }
            if other.trim().is_empty() {
                return Err(v.doc.error(
                    &at,
                    span,
                    "`links:` needs a flow name, e.g. `\"links:lucca-to-cards\"`",
                ));
            }
            links = Some(IdentityRef {
                flow: flow.into(),
                other: other.trim().into(),
                key: at,
                span: span.clone(),
            });
            continue;
        }
        let Some((_, key)) = CORRELATION.iter().find(|(n, _)| n == name) else {
            let hint = closest(name, names.iter().copied())
                .map(|c| format!("did you mean `{c}`? "))
                .unwrap_or_default();
            return Err(v.doc.error(
                &at,
                span,
                format!(
                    "unknown correlation key `{name}`; {hint}keys are {}, or `links:<flow>` first",
                    names.join(", ")
                ),
            ));
        };
        if !keys.contains(key) {
            keys.push(*key);
        }
    }
    Ok((keys, links))
}

/// Every `links:<flow>` correlation entry names a configured flow that joins
/// the same two connections the other way round (its target is this flow's
/// source, its source this flow's target): its links then pair exactly the
/// records this flow matches.
pub(super) fn check_identities(
    doc: &Doc<'_>,
    flows: &BTreeMap<String, Flow>,
    refs: &[IdentityRef],
) -> Result<(), ConfigError> {
    for r in refs {
        let Some(other) = flows.get(&r.other) else {
            let hint = closest(&r.other, flows.keys().map(String::as_str))
                .map(|c| format!("did you mean `{c}`? "))
                .unwrap_or_default();
            let known: Vec<&str> = flows.keys().map(String::as_str).collect();
            return Err(doc.error(
                &r.key,
                &r.span,
                format!(
                    "`links:{}` names no configured flow; {hint}flows are {}",
                    r.other,
                    known.join(", ")
                ),
            ));
        };
        let Some(this) = flows.get(&r.flow) else {
            continue;
        };
        if other.target != this.source || other.source != this.target {
            return Err(doc.error(
                &r.key,
                &r.span,
                format!(
                    "flow `{}` goes from `{}` to `{}`; its links can identify people for this flow only if it goes from `{}` (this flow's target) to `{}` (this flow's source)",
                    other.name, other.source, other.target, this.target, this.source
                ),
            ));
        }
    }
    Ok(())
}

/// A field name: canonical (`work_email`) or `custom:<code>`.
fn field_ref(
    v: &Val<'_, '_>,
    name: &str,
    span: &std::ops::Range<usize>,
    path: &str,
) -> Result<FieldRef, ConfigError> {
    if let Some(code) = name.strip_prefix("custom:") {
        let code = code.trim();
        if code.is_empty() {
            return Err(v.doc.error(
                path,
                span,
                "`custom:` needs the field's code, e.g. `custom:e_formation`",
            ));
        }
        return Ok(FieldRef::Custom(code.to_string()));
    }
    if let Some(f) = Field::from_name(name) {
        return Ok(FieldRef::Canonical(f));
    }
    let names: Vec<&str> = Field::ALL.iter().map(|f| f.name()).collect();
    let hint = closest(name, names.iter().copied())
        .map(|c| format!("did you mean `{c}`? "))
        .unwrap_or_default();
    Err(v.doc.error(
        path,
        span,
        format!(
            "unknown field `{name}`; {hint}canonical fields are {}; a custom field is written `custom:{name}`",
            names.join(", ")
        ),
    ))
}

/// A field given as a string value.
fn field_of(v: &Val<'_, '_>) -> Result<FieldRef, ConfigError> {
    let name = v.str("\"work_email\"")?;
    field_ref(v, name, &v.span(), v.path)
}

/// A list of fields, each with its place in the file.
fn listed_fields(v: &Val<'_, '_>, example: &str) -> Result<Vec<Listed>, ConfigError> {
    let items = v.str_list(example)?;
    let mut out = Vec::with_capacity(items.len());
    for (i, (name, span)) in items.iter().enumerate() {
        let key = format!("{}[{i}]", v.path);
        let field = field_ref(v, name, span, &key)?;
        let (line, column) = v.doc.line_col(span.start);
        out.push(Listed {
            field,
            key,
            line,
            column,
        });
    }
    Ok(out)
}

fn field_set(v: &Val<'_, '_>, example: &str) -> Result<FieldSet, ConfigError> {
    let items = v.str_list(example)?;
    let mut set = FieldSet::new();
    for (i, (name, span)) in items.iter().enumerate() {
        set.insert(field_ref(v, name, span, &format!("{}[{i}]", v.path))?);
    }
    Ok(set)
}

const ROW_KEYS_EXAMPLE: &str = "{ e_formation = \"e_title\" }";

/// `row_keys = { e_formation = "e_title" }`: compound custom fields the
/// flow owns, each compared row by row under the named sub-field (see
/// [`muster_core::rows`]). A field must be an owned custom field, so a typo
/// is an error with a "did you mean" rather than a key that never applies.
fn parse_row_keys(
    v: &Val<'_, '_>,
    owned: &FieldSet,
) -> Result<BTreeMap<String, String>, ConfigError> {
    let t = v.table(&[], ROW_KEYS_EXAMPLE)?;
    let mut out = BTreeMap::new();
    for (key, span, value) in &t.entries {
        let kp = join(v.path, key);
        let code = key.strip_prefix("custom:").unwrap_or(key).trim();
        if Field::from_name(code).is_some() {
            return Err(v.doc.error(
                &kp,
                span,
                format!(
                    "`{code}` is a canonical field and has no rows; `row_keys` names compound custom fields, e.g. `row_keys = {ROW_KEYS_EXAMPLE}`"
                ),
            ));
        }
        if !owned.contains(&FieldRef::Custom(code.to_string())) {
            return Err(v.doc.error(&kp, span, not_owned_rows(code, owned)));
        }
        let item = Val {
            doc: v.doc,
            path: &kp,
            value,
        };
        let sub = item.str("\"e_title\"")?.trim();
        if sub.is_empty() {
            return Err(item.error(format!(
                "name the sub-field whose value identifies a row of `{code}`, e.g. `\"e_title\"`"
            )));
        }
        out.insert(code.to_string(), sub.to_string());
    }
    Ok(out)
}

/// The message for a `row_keys` entry naming a field the flow does not own.
fn not_owned_rows(code: &str, owned: &FieldSet) -> String {
    let custom = owned.custom();
    let hint = closest(code, custom.iter().map(String::as_str))
        .map(|c| format!("did you mean `{c}`? "))
        .unwrap_or_default();
    let known = if custom.is_empty() {
        "the flow owns no custom field".to_string()
    } else {
        format!("the flow's custom fields: {}", custom.join(", "))
    };
    format!(
        "`row_keys` names `{code}`, which the flow does not own; {hint}{known}; list it in `fields` as `custom:{code}`"
    )
}

/// `guard = false` (off), `guard = true` (the default), or a table of
/// `max_<kind>`, `max_<kind>_ratio`, `<kind>_ratio_from`. A kind not
/// mentioned keeps its default threshold; a kind mentioned starts from its
/// default and takes the values given.
fn parse_guard(v: &Val<'_, '_>) -> Result<Guard, ConfigError> {
    match v.get() {
        DeValue::Boolean(true) => return Ok(Guard::default()),
        DeValue::Boolean(false) => return Ok(Guard::off()),
        _ => {}
    }
    let t = v.table(&[], "{ max_deactivate = 25, max_deactivate_ratio = 0.10 }")?;
    let kinds: Vec<ActionKind> = ActionKind::ALL
        .into_iter()
        .filter(|k| k.changes_target())
        .collect();
    let known: Vec<String> = kinds
        .iter()
        .flat_map(|k| {
            [
                format!("max_{}", k.name()),
                format!("max_{}_ratio", k.name()),
                format!("{}_ratio_from", k.name()),
            ]
        })
        .collect();
    let mut guard = Guard::default();
    for (key, span, value) in &t.entries {
        let kp = join(v.path, key);
        let item = Val {
            doc: v.doc,
            path: &kp,
            value,
        };
        let parsed = kinds.iter().find_map(|k| {
            let n = k.name();
            if key == &format!("max_{n}") {
                Some((*k, 0))
            } else if key == &format!("max_{n}_ratio") {
                Some((*k, 1))
            } else if key == &format!("{n}_ratio_from") {
                Some((*k, 2))
            } else {
                None
            }
        });
        let Some((kind, which)) = parsed else {
            let hint = closest(key, known.iter().map(String::as_str))
                .map(|c| format!("did you mean `{c}`? "))
                .unwrap_or_default();
            return Err(v.doc.error(
                &kp,
                span,
                format!(
                    "unknown guard key `{key}`; {hint}guard keys are `max_<action>` (a count), `max_<action>_ratio` (a share of the linked accounts, 0.0 to 1.0) and `<action>_ratio_from` (the count from which the ratio applies), where <action> is one of {}",
                    kinds.iter().map(|k| k.name()).collect::<Vec<_>>().join(", ")
                ),
            ));
        };
        let mut th = guard
            .thresholds
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, t)| *t)
            .unwrap_or_default();
        match which {
            0 => {
                let n = item.int("25")?;
                th.max =
                    Some(u32::try_from(n).map_err(|_| item.error("expected a count from 0 up"))?);
            }
            1 => {
                let r = item.float("0.10")?;
                if !(0.0..=1.0).contains(&r) {
                    return Err(item.error(
                        "a ratio is a share from 0.0 to 1.0 (0.10 = 10 % of the linked accounts)",
                    ));
                }
                th.max_ratio = Some(r);
            }
            _ => {
                let n = item.int("2")?;
                th.ratio_from =
                    u32::try_from(n).map_err(|_| item.error("expected a count from 0 up"))?;
            }
        }
        guard = guard.with(kind, th);
    }
    // Stable order (by action kind), whatever the order in the file.
    guard.thresholds.sort_by_key(|(k, _)| *k);
    Ok(guard)
}

const MAPPING_EXAMPLE: &str =
    "[{ coalesce = { field = \"work_email\", from = [\"work_email\", \"personal_email\"] } }]";
const RULES: &[&str] = &["rename", "default", "coalesce", "template", "value_map"];

/// `mapping = [ { rename = { from = "…", to = "…" } }, … ]`: each item is a
/// table with exactly one key naming the rule.
fn parse_mapping(v: &Val<'_, '_>) -> Result<Mapping, ConfigError> {
    let mut rules = Vec::new();
    for (path, value) in v.array(MAPPING_EXAMPLE)? {
        let item = Val {
            doc: v.doc,
            path: &path,
            value,
        };
        let t = item.table(RULES, MAPPING_EXAMPLE)?;
        let [(rule, _, body)] = t.entries.as_slice() else {
            return Err(item.error(format!(
                "each mapping item names exactly one rule ({}), e.g. `{MAPPING_EXAMPLE}`",
                RULES.join(", ")
            )));
        };
        let rp = join(&path, rule);
        let body = Val {
            doc: v.doc,
            path: &rp,
            value: body,
        };
        rules.push(parse_rule(rule, &body)?);
    }
    Ok(Mapping::new(rules))
}

fn parse_rule(rule: &str, v: &Val<'_, '_>) -> Result<Rule, ConfigError> {
    let path = v.path;
    let k = |key: &str| join(path, key);
    match rule {
        "rename" => {
            let t = v.table(
                &["from", "to"],
                "{ from = \"custom:hired_on\", to = \"start_date\" }",
            )?;
            let (fp, tp) = (k("from"), k("to"));
            let from = field_of(
                &t.get("from", &fp)
                    .ok_or_else(|| t.missing("from", "\"custom:hired_on\""))?,
            )?;
            let to = field_of(
                &t.get("to", &tp)
                    .ok_or_else(|| t.missing("to", "\"start_date\""))?,
            )?;
            Ok(Rule::Rename { from, to })
        }
        "default" => {
            let t = v.table(
                &["field", "value"],
                "{ field = \"legal_entity_id\", value = \"1\" }",
            )?;
            let (fp, vp) = (k("field"), k("value"));
            let field = field_of(
                &t.get("field", &fp)
                    .ok_or_else(|| t.missing("field", "\"legal_entity_id\""))?,
            )?;
            let val = t
                .get("value", &vp)
                .ok_or_else(|| t.missing("value", "\"1\""))?;
            let value = match val.get() {
                DeValue::String(s) => FieldValue::Text(s.to_string()),
                DeValue::Integer(_) | DeValue::Float(_) => FieldValue::Number(val.float("1")?),
                DeValue::Boolean(b) => FieldValue::Bool(*b),
                DeValue::Datetime(d) => FieldValue::Text(d.to_string()),
                _ => return Err(val.wrong_type("a string, number, boolean or date", "\"1\"")),
            };
            // Fail now rather than on every record: the value must fit the field.
            let mut probe = Person::new("config");
            if let Err(m) = probe.set(&field, Some(value.clone())) {
                return Err(val.error(format!(
                    "`{field}` expects {}, which this default is not",
                    m.expected
                )));
            }
            Ok(Rule::Default { field, value })
        }
        "coalesce" => {
            let t = v.table(
                &["field", "from"],
                "{ field = \"work_email\", from = [\"work_email\", \"personal_email\"] }",
            )?;
            let (fp, sp) = (k("field"), k("from"));
            let field = field_of(
                &t.get("field", &fp)
                    .ok_or_else(|| t.missing("field", "\"work_email\""))?,
            )?;
            let from_v = t
                .get("from", &sp)
                .ok_or_else(|| t.missing("from", "[\"work_email\", \"personal_email\"]"))?;
            let mut from = Vec::new();
            for (i, (name, span)) in from_v
                .str_list("[\"work_email\", \"personal_email\"]")?
                .iter()
                .enumerate()
            {
                from.push(field_ref(&from_v, name, span, &format!("{sp}[{i}]"))?);
            }
            if from.is_empty() {
                return Err(from_v.error("list at least one field to take the value from"));
            }
            Ok(Rule::Coalesce { field, from })
        }
        "template" => {
            let t = v.table(
                &["field", "pattern", "keep_existing"],
                "{ field = \"login\", pattern = \"{given_name|initial}{family_name}|login\" }",
            )?;
            let (fp, pp, kp) = (k("field"), k("pattern"), k("keep_existing"));
            let field = field_of(
                &t.get("field", &fp)
                    .ok_or_else(|| t.missing("field", "\"login\""))?,
            )?;
            let pat_v = t.get("pattern", &pp).ok_or_else(|| {
                t.missing("pattern", "\"{given_name|initial}{family_name}|login\"")
            })?;
            let pattern = pat_v.str("\"{given_name|initial}{family_name}|login\"")?;
            Template::parse(pattern).map_err(|e| pat_v.error(e.to_string()))?;
            let keep_existing = t
                .get("keep_existing", &kp)
                .map(|b| b.bool())
                .transpose()?
                .unwrap_or(false);
            Ok(Rule::Template {
                field,
                pattern: pattern.to_string(),
                keep_existing,
            })
        }
        "value_map" => {
            let example = "{ from = \"custom:establishment\", to = \"legal_entity_id\", values = { Paris = \"12\" } }";
            let t = v.table(&["from", "to", "values", "fallback"], example)?;
            let (fp, tp, vp, fbp) = (k("from"), k("to"), k("values"), k("fallback"));
            let from = field_of(
                &t.get("from", &fp)
                    .ok_or_else(|| t.missing("from", "\"custom:establishment\""))?,
            )?;
            let to = field_of(
                &t.get("to", &tp)
                    .ok_or_else(|| t.missing("to", "\"legal_entity_id\""))?,
            )?;
            let values_v = t
                .get("values", &vp)
                .ok_or_else(|| t.missing("values", "{ Paris = \"12\", Lyon = \"13\" }"))?;
            let vt = values_v.table(&[], "{ Paris = \"12\" }")?;
            let mut values = BTreeMap::new();
            for (key, _, value) in &vt.entries {
                let ip = join(&vp, key);
                let item = Val {
                    doc: v.doc,
                    path: &ip,
                    value,
                };
                values.insert(key.clone(), item.str("\"12\"")?.to_string());
            }
            let fallback = t
                .get("fallback", &fbp)
                .map(|f| f.str("\"1\"").map(str::to_string))
                .transpose()?;
            Ok(Rule::ValueMap {
                from,
                to,
                values,
                fallback,
            })
        }
        // `parse_mapping` only passes known rule names.
        other => Err(v.error(format!(
            "unknown mapping rule `{other}`; rules are {}",
            RULES.join(", ")
        ))),
    }
}

fn parse_webhook(v: &Val<'_, '_>, base: &Path) -> Result<Webhook, ConfigError> {
    let t = v.table(
        &["secret", "id_field", "require"],
        "{ secret = { env = \"WEBHOOK_SECRET\" }, id_field = \"candidate.id\" }",
    )?;
    let (sp, ip, rp) = (
        join(v.path, "secret"),
        join(v.path, "id_field"),
        join(v.path, "require"),
    );
    let secret = parse_secret(
        &t.get("secret", &sp)
            .ok_or_else(|| t.missing("secret", "{ env = \"WEBHOOK_SECRET\" }"))?,
        base,
    )?;
    let id_v = t
        .get("id_field", &ip)
        .ok_or_else(|| t.missing("id_field", "\"candidate.id\""))?;
    let id_field = dotted_path(&id_v, "\"candidate.id\"", "the record id")?;
    let mut require = Vec::new();
    if let Some(r) = t.get("require", &rp) {
        for (path, span) in r.str_list("[\"event\", \"data.column.id\"]")? {
            if path.is_empty() || path.split('.').any(str::is_empty) {
                return Err(v.doc.error(
                    &rp,
                    &span,
                    "a dotted path to a value every event must have, e.g. \"data.column.id\" (no empty segments)",
                ));
            }
            require.push(path);
        }
    }
    Ok(Webhook {
        secret,
        id_field,
        require,
    })
}

/// A dotted path into an event's JSON (`candidate.id`), naming `what` it
/// points at in the error.
fn dotted_path(v: &Val<'_, '_>, example: &str, what: &str) -> Result<String, ConfigError> {
    let path = v.str(example)?;
    if path.is_empty() || path.split('.').any(str::is_empty) {
        return Err(v.error(format!(
            "a dotted path to {what} in the event's JSON, e.g. {example} (no empty segments)"
        )));
    }
    Ok(path.to_string())
}

/// What a flow's target is, for [`Flow::fit_to_target`]: its connection and
/// plugin names (for messages) and what its plugin declares.
pub struct TargetFacts<'a> {
    pub connection: &'a str,
    pub plugin: &'a str,
    pub declarations: &'a Declarations,
}

impl Flow {
    /// The flow's policy fitted to its target's declarations, at flow load
    /// (before any record is read):
    ///
    /// - a field listed in `fields` that the target does not store is a
    ///   config error naming the flow, the field and the target, at the
    ///   field's line:column — otherwise every record would fail on every
    ///   run after the first;
    /// - without `fields`, the default is narrowed to what the target stores
    ///   (the default means "everything the target can take");
    /// - the fields the target requires on create join `required_on_create`:
    ///   a record without them is skipped (`missing_field`) instead of
    ///   failing at the target, and a create carries them.
    ///
    /// A target that declares nothing leaves the policy as configured.
    pub fn fit_to_target(
        &self,
        file: &Path,
        target: &TargetFacts<'_>,
    ) -> Result<Policy, ConfigError> {
        let mut policy = self.policy.clone();
        let decl = target.declarations;
        for f in decl.create_requires.iter() {
            policy.required_on_create.insert(f);
        }
        let Some(stored) = &decl.stores else {
            return Ok(policy);
        };
        match &self.fields_listed {
            Some(listed) => {
                if let Some(bad) = listed.iter().find(|l| !stored.contains(&l.field)) {
                    return Err(self.not_stored(file, bad, target));
                }
            }
            None => {
                policy.owned = policy.owned.iter().filter(|f| stored.contains(f)).collect();
            }
        }
        Ok(policy)
    }

    fn not_stored(&self, file: &Path, bad: &Listed, target: &TargetFacts<'_>) -> ConfigError {
        let stores = target.declarations.stores.as_ref();
        let mut names: Vec<String> = stores
            .map(|s| s.fields.iter().map(String::from).collect())
            .unwrap_or_default();
        if stores.is_some_and(|s| s.any_custom) {
            names.push("custom:*".into());
        }
        ConfigError::Invalid {
            file: file.to_path_buf(),
            key: bad.key.clone(),
            line: bad.line,
            column: bad.column,
            message: format!(
                "flow `{}` owns `{}`, but its target `{}` (plugin {}) cannot store it; \
                 remove it from `fields` (that target stores: {})",
                self.name,
                bad.field,
                target.connection,
                target.plugin,
                names.join(", ")
            ),
        }
    }
}
