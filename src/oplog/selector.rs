//! Turns an OpSelector (and `lastN`) into SQL over the operations table: the query of
//! GetOperations, and the conditions ClearHistory deletes by. Pure:
//! it builds text and parameters and never touches the database.

use rusqlite::types::Value;

use super::error::OpLogError;
use crate::proto::OpSelector;

/// A query returning `(id, json)` rows sorted by id ascending.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SelectQuery {
    pub sql: String,
    pub params: Vec<Value>,
}

/// The conditions a selector puts on the operations table: ANDed, none = every row.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Filter {
    pub clauses: Vec<&'static str>,
    pub params: Vec<Value>,
}

impl Filter {
    /// The clauses joined with AND, then `extra` (if any), as a WHERE clause with a
    /// leading space; "" when there is nothing to filter on.
    pub fn where_clause(&self, extra: Option<&str>) -> String {
        let all: Vec<&str> = self.clauses.iter().copied().chain(extra).collect();
        if all.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", all.join(" AND "))
        }
    }
}

/// `Ok(None)` when the selector can match nothing (so no query is needed).
pub(crate) fn build(
    sel: &OpSelector,
    last_n: Option<i64>,
) -> Result<Option<SelectQuery>, OpLogError> {
    let Some(selected) = filter(sel)? else {
        return Ok(None);
    };
    let filter = selected.where_clause(None);
    let mut params = selected.params;
    let sql = match last_n {
        Some(n) if n > 0 => {
            params.push(Value::Integer(n));
            format!(
                "SELECT id, json FROM (SELECT id, json FROM operations{filter} \
                 ORDER BY start_ms DESC, id DESC LIMIT ?) ORDER BY id"
            )
        }
        _ => format!("SELECT id, json FROM operations{filter} ORDER BY id"),
    };
    Ok(Some(SelectQuery { sql, params }))
}

/// The selector as conditions on the operations table (what `query` and `clear` share).
/// `Ok(None)` when it can match nothing.
pub(crate) fn filter(sel: &OpSelector) -> Result<Option<Filter>, OpLogError> {
    let mut clauses: Vec<&'static str> = Vec::new();
    let mut params: Vec<Value> = Vec::new();

    // An empty id list is the same as none: proto3 cannot tell them apart.
    if let Some(ids) = sel.ids.as_ref().filter(|ids| !ids.is_empty()) {
        let others = other_fields(sel);
        if !others.is_empty() {
            return Err(OpLogError::InvalidSelector(format!(
                "a selector with ids cannot also have {}; send either ids or the other fields",
                others.join(", ")
            )));
        }
        // One parameter whatever the number of ids (SQLite limits parameters).
        let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
        clauses.push("id IN (SELECT value FROM json_each(?))");
        params.push(Value::Text(format!("[{list}]")));
    }
    match sel.original_instance_keyid.as_deref() {
        // "" = created by this server, which is every operation footrest has.
        None | Some("") => {}
        Some(_) => return Ok(None),
    }
    let text_fields = [
        ("instance_id = ?", &sel.instance_id),
        ("repo_guid = ?", &sel.repo_guid),
        ("repo_id = ?", &sel.repo_id),
        ("plan_id = ?", &sel.plan_id),
        ("snapshot_id = ?", &sel.snapshot_id),
    ];
    for (clause, value) in text_fields {
        if let Some(value) = value {
            clauses.push(clause);
            params.push(Value::Text(value.clone()));
        }
    }
    if let Some(flow_id) = sel.flow_id {
        clauses.push("flow_id = ?");
        params.push(Value::Integer(flow_id));
    }
    if let Some(modno) = sel.modno_gte {
        // Without statistics SQLite guesses a one-sided range keeps a quarter of the
        // rows and would rather walk the table in id order than use the modno index.
        // Polling asks for the few changes since its last look, so say so.
        clauses.push("likelihood(modno >= ?, 0.01)");
        params.push(Value::Integer(modno));
    }

    Ok(Some(Filter { clauses, params }))
}

/// The JSON names of the selector fields other than `ids` that are present.
fn other_fields(sel: &OpSelector) -> Vec<&'static str> {
    let present = [
        ("instanceId", sel.instance_id.is_some()),
        (
            "originalInstanceKeyid",
            sel.original_instance_keyid.is_some(),
        ),
        ("repoGuid", sel.repo_guid.is_some()),
        ("repoId", sel.repo_id.is_some()),
        ("planId", sel.plan_id.is_some()),
        ("snapshotId", sel.snapshot_id.is_some()),
        ("flowId", sel.flow_id.is_some()),
        ("modnoGte", sel.modno_gte.is_some()),
    ];
    present
        .iter()
        .filter(|(_, on)| *on)
        .map(|(name, _)| *name)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_selector_selects_everything_in_id_order() {
        let q = build(&OpSelector::default(), None).unwrap().unwrap();
        assert_eq!(q.sql, "SELECT id, json FROM operations ORDER BY id");
        assert!(q.params.is_empty());
        for n in [Some(0), Some(-3)] {
            assert_eq!(build(&OpSelector::default(), n).unwrap().unwrap(), q);
        }
    }

    #[test]
    fn present_fields_are_anded_in_a_fixed_order() {
        let sel = OpSelector {
            plan_id: Some(String::new()),
            flow_id: Some(4),
            modno_gte: Some(0),
            original_instance_keyid: Some(String::new()),
            ..OpSelector::default()
        };
        let q = build(&sel, Some(5)).unwrap().unwrap();
        assert_eq!(
            q.sql,
            "SELECT id, json FROM (SELECT id, json FROM operations WHERE plan_id = ? AND \
             flow_id = ? AND likelihood(modno >= ?, 0.01) ORDER BY start_ms DESC, id DESC LIMIT ?) ORDER BY id"
        );
        assert_eq!(
            q.params,
            [
                Value::Text(String::new()),
                Value::Integer(4),
                Value::Integer(0),
                Value::Integer(5)
            ]
        );
    }

    #[test]
    fn ids_are_one_parameter_and_stand_alone() {
        let sel = OpSelector {
            ids: Some(vec![3, 1]),
            ..OpSelector::default()
        };
        let q = build(&sel, None).unwrap().unwrap();
        assert_eq!(q.params, [Value::Text("[3,1]".into())]);
        let sel = OpSelector {
            ids: Some(vec![3]),
            plan_id: Some("p".into()),
            modno_gte: Some(1),
            ..OpSelector::default()
        };
        assert_eq!(
            build(&sel, None).unwrap_err().to_string(),
            "a selector with ids cannot also have planId, modnoGte; send either ids or the \
             other fields"
        );
        let sel = OpSelector {
            ids: Some(vec![]),
            plan_id: Some("p".into()),
            ..OpSelector::default()
        };
        assert!(build(&sel, None).is_ok());
    }

    #[test]
    fn a_foreign_instance_key_matches_nothing() {
        let sel = OpSelector {
            original_instance_keyid: Some("abc".into()),
            ..OpSelector::default()
        };
        assert_eq!(build(&sel, None).unwrap(), None);
    }
}
