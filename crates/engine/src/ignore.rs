//! `ignoreDifferences` entries, as Argo CD writes them, read from either configuration source.

use serde::Deserialize;

use crate::error::Error;
use crate::model::IgnoreDifference;

/// One entry as written (Argo CD's field names).
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct RawIgnore {
    // Accepted as Argo CD writes them; kind and name select the objects here.
    #[serde(rename = "group")]
    _group: Option<String>,
    kind: Option<String>,
    name: Option<String>,
    #[serde(rename = "namespace")]
    _namespace: Option<String>,
    #[serde(default)]
    json_pointers: Vec<String>,
    #[serde(default)]
    jq_path_expressions: Vec<String>,
    #[serde(default)]
    managed_fields_managers: Vec<String>,
}

/// Validates entries; errors name `file` and the entry's key path under `at`.
pub(crate) fn convert(
    raw: Vec<RawIgnore>,
    file: &str,
    at: &str,
) -> Result<Vec<IgnoreDifference>, Error> {
    let err = |path: String, reason: &str| Error::Config {
        file: file.to_owned(),
        path,
        reason: reason.to_owned(),
    };
    raw.into_iter()
        .enumerate()
        .map(|(i, r)| {
            let here = format!("{at}[{i}]");
            if !r.jq_path_expressions.is_empty() {
                return Err(err(
                    format!("{here}.jqPathExpressions"),
                    "not supported; write the paths as jsonPointers",
                ));
            }
            if let Some((j, p)) = r
                .json_pointers
                .iter()
                .enumerate()
                .find(|(_, p)| !p.starts_with('/'))
            {
                return Err(err(
                    format!("{here}.jsonPointers[{j}]"),
                    &format!("{p:?} is not a JSON pointer (it starts with /)"),
                ));
            }
            if r.json_pointers.is_empty() && r.managed_fields_managers.is_empty() {
                return Err(err(
                    here,
                    "names neither jsonPointers nor managedFieldsManagers",
                ));
            }
            Ok(IgnoreDifference {
                kind: r.kind.filter(|k| !k.is_empty() && k != "*"),
                name: r.name.filter(|n| !n.is_empty()),
                json_pointers: r.json_pointers,
                managers: r.managed_fields_managers,
            })
        })
        .collect()
}
