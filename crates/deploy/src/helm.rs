//! Argo CD's Helm parameters as `helm template` arguments: the Application's
//! `spec.source.helm` with the `.argocd-source.yaml` and `.argocd-source-<app>.yaml` overrides
//! merged in (a JSON merge patch each, in that order, as Argo CD's repo server merges them), then
//! turned into the arguments Argo CD gives `helm template` — `--values` for each values file,
//! then one for `values`/`valuesObject`, `--set`/`--set-string` (`forceString`) for the
//! parameters with commas escaped as Argo CD escapes them, `--set-file` for file parameters.
//! Pure: the caller writes [`HelmTemplate::values`] where [`HelmTemplate::args`] say.

use serde_json::Value;

/// A JSON merge patch (RFC 7386): objects merge key by key, `null` deletes, anything else
/// (lists included) replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = Value::Object(serde_json::Map::new());
            }
            if let Value::Object(t) = target {
                for (k, v) in p {
                    if v.is_null() {
                        t.remove(k);
                    } else {
                        merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                    }
                }
            }
        }
        _ => *target = patch.clone(),
    }
}

/// What `helm template` is run with, from the chart's directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HelmTemplate {
    /// The arguments after `helm`.
    pub args: Vec<String>,
    /// The inline values (`values` or `valuesObject`) as YAML, to be written to the
    /// `values_path` given to [`template`] (already among the arguments); `None`: none.
    pub values: Option<String>,
}

/// Escapes a `--set` value as Argo CD does: every `,` not already escaped gets a `\`, unless
/// the value is a Helm list (`{a,b}`).
fn clean_set_value(v: &str) -> String {
    if v.starts_with('{') && v.ends_with('}') {
        return v.to_owned();
    }
    let mut out = String::with_capacity(v.len());
    let mut prev = None;
    for c in v.chars() {
        if c == ',' && prev != Some('\\') {
            out.push('\\');
        }
        out.push(c);
        prev = Some(c);
    }
    out
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The `helm template` arguments for `helm` (`spec.source.helm` with the overrides merged in),
/// for the release `app` (unless `releaseName` says otherwise) in `namespace`. `values_path`
/// is where the caller writes [`HelmTemplate::values`]. A values file `$name/path` of a
/// multi-source Application's `ref` source is `refs[name]` joined with the path (kept inside
/// it); a `$name` not in `refs`, a URL, or a path leaving the repository is refused. Errors
/// name the field.
pub fn template(
    helm: &Value,
    app: &str,
    namespace: &str,
    values_path: &str,
    refs: &std::collections::BTreeMap<String, String>,
) -> Result<HelmTemplate, String> {
    let release = helm
        .get("releaseName")
        .and_then(Value::as_str)
        .filter(|r| !r.is_empty())
        .unwrap_or(app);
    let mut args = vec![
        "template".to_owned(),
        ".".to_owned(),
        "--name-template".to_owned(),
        release.to_owned(),
    ];
    if !namespace.is_empty() {
        args.extend(["--namespace".to_owned(), namespace.to_owned()]);
    }
    // Parameters: the last of a name wins, and the order is the names' (Argo CD keeps them in
    // a map).
    let mut set = std::collections::BTreeMap::new();
    let mut set_string = std::collections::BTreeMap::new();
    for (i, p) in helm
        .get("parameters")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let name = p
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| format!("helm.parameters[{i}].name: missing"))?;
        let value = p.get("value").map(text).unwrap_or_default();
        let force = p
            .get("forceString")
            .or_else(|| p.get("forcestring"))
            .is_some_and(|f| f.as_bool() == Some(true) || f.as_str() == Some("true"));
        set.remove(name);
        set_string.remove(name);
        if force {
            set_string.insert(name.to_owned(), value);
        } else {
            set.insert(name.to_owned(), value);
        }
    }
    for (k, v) in &set {
        args.extend(["--set".to_owned(), format!("{k}={}", clean_set_value(v))]);
    }
    for (k, v) in &set_string {
        args.extend([
            "--set-string".to_owned(),
            format!("{k}={}", clean_set_value(v)),
        ]);
    }
    let relative = |p: &str, field: &str| -> Result<String, String> {
        if p.starts_with('$') || p.contains("://") {
            return Err(format!(
                "{field}: {p:?} names another source or a URL, which driftwatch does not fetch"
            ));
        }
        driftwatch_git::normalize(p)
            .map_err(|r| format!("{field}: {p:?} {r}"))
            .map(|n| if n.is_empty() { ".".to_owned() } else { n })
    };
    for (i, f) in helm
        .get("fileParameters")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let field = format!("helm.fileParameters[{i}]");
        let name = f
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("{field}.name: missing"))?;
        let path = f
            .get("path")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("{field}.path: missing"))?;
        args.extend([
            "--set-file".to_owned(),
            format!("{name}={}", relative(path, &format!("{field}.path"))?),
        ]);
    }
    for (i, f) in helm
        .get("valueFiles")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let field = format!("helm.valueFiles[{i}]");
        let f = f.as_str().ok_or_else(|| format!("{field}: not a string"))?;
        let resolved = match f.strip_prefix('$') {
            Some(rest) => {
                let (name, path) = rest.split_once('/').unwrap_or((rest, ""));
                let root = refs.get(name).ok_or_else(|| {
                    format!(
                        "{field}: {f:?} names source ${name}, which is no ref source in the \
                         same repository at the same revision"
                    )
                })?;
                let path =
                    driftwatch_git::normalize(path).map_err(|r| format!("{field}: {f:?} {r}"))?;
                format!("{}/{path}", root.trim_end_matches('/'))
            }
            None => relative(f, &field)?,
        };
        args.extend(["--values".to_owned(), resolved]);
    }
    // `valuesObject` wins over `values` (a YAML string).
    let values = match (helm.get("valuesObject"), helm.get("values")) {
        (Some(o), _) if !o.is_null() => {
            Some(serde_saphyr::to_string(o).map_err(|e| format!("helm.valuesObject: {e}"))?)
        }
        (_, Some(Value::String(s))) if !s.trim().is_empty() => Some(s.clone()),
        (_, Some(v)) if !v.is_null() && !v.is_string() => {
            return Err("helm.values: expected a YAML string".into());
        }
        _ => None,
    };
    if values.is_some() {
        args.extend(["--values".to_owned(), values_path.to_owned()]);
    }
    if helm.get("skipCrds").and_then(Value::as_bool) != Some(true) {
        args.push("--include-crds".to_owned());
    }
    Ok(HelmTemplate { args, values })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn overrides_merge_as_a_json_merge_patch() {
        let mut source = json!({"helm": {
            "parameters": [{"name": "image.tag", "value": "1.0.0"}],
            "valueFiles": ["values.yaml"],
            "releaseName": "shop"
        }});
        // .argocd-source.yaml, then .argocd-source-<app>.yaml: lists are replaced whole.
        merge_patch(
            &mut source,
            &json!({"helm": {"parameters": [{"name": "replicas", "value": "2"}]}}),
        );
        merge_patch(
            &mut source,
            &json!({"helm": {
                "parameters": [{"name": "image.tag", "value": "1.0.1", "forcestring": true}],
                "releaseName": null
            }}),
        );
        assert_eq!(
            source,
            json!({"helm": {
                "parameters": [{"name": "image.tag", "value": "1.0.1", "forcestring": true}],
                "valueFiles": ["values.yaml"]
            }})
        );
    }

    #[test]
    fn arguments_as_argo_cd_gives_them() {
        let helm = json!({
            "parameters": [
                {"name": "image.tag", "value": "1.0.0"},
                {"name": "image.tag", "value": "1.0.1", "forceString": true},
                {"name": "hosts", "value": "a.example,b.example"},
                {"name": "list", "value": "{a,b}"},
                {"name": "escaped", "value": "x\\,y"},
                {"name": "replicas", "value": 2}
            ],
            "fileParameters": [{"name": "config", "path": "files/config.json"}],
            "valueFiles": ["values.yaml", "./env/prod.yaml"],
            "valuesObject": {"ingress": {"enabled": true}},
            "values": "ignored: true\n"
        });
        let t = template(
            &helm,
            "shop",
            "prod",
            "/tmp/values.yaml",
            &Default::default(),
        )
        .unwrap();
        assert_eq!(
            t.args,
            [
                "template",
                ".",
                "--name-template",
                "shop",
                "--namespace",
                "prod",
                "--set",
                "escaped=x\\,y",
                "--set",
                "hosts=a.example\\,b.example",
                "--set",
                "list={a,b}",
                "--set",
                "replicas=2",
                "--set-string",
                "image.tag=1.0.1",
                "--set-file",
                "config=files/config.json",
                "--values",
                "values.yaml",
                "--values",
                "env/prod.yaml",
                "--values",
                "/tmp/values.yaml",
                "--include-crds",
            ]
        );
        assert_eq!(t.values.as_deref(), Some("ingress:\n  enabled: true\n"));

        let plain = template(
            &json!({"values": "a: 1\n", "releaseName": "rel", "skipCrds": true}),
            "shop",
            "",
            "v.yaml",
            &Default::default(),
        )
        .unwrap();
        assert_eq!(
            plain.args,
            [
                "template",
                ".",
                "--name-template",
                "rel",
                "--values",
                "v.yaml"
            ]
        );
        assert_eq!(plain.values.as_deref(), Some("a: 1\n"));
        let none = template(&json!({}), "shop", "ns", "v.yaml", &Default::default()).unwrap();
        // `$values/...` from a ref source of the same checkout: below that source's root.
        let refs = [("values".to_owned(), "/export".to_owned())].into();
        let t = template(
            &json!({"valueFiles": ["$values/env/prod.yaml"]}),
            "shop",
            "",
            "v.yaml",
            &refs,
        )
        .unwrap();
        assert_eq!(t.args[4..6], ["--values", "/export/env/prod.yaml"]);
        for bad in ["$values/../../etc/passwd", "$other/x.yaml"] {
            let e = template(&json!({"valueFiles": [bad]}), "s", "", "v", &refs).unwrap_err();
            assert!(e.starts_with("helm.valueFiles[0]"), "{bad}: {e}");
        }
        assert_eq!(none.values, None);
        assert!(!none.args.contains(&"--values".to_owned()));
    }

    #[test]
    fn what_cannot_be_rendered_here_is_refused_naming_the_field() {
        for (helm, field) in [
            (
                json!({"valueFiles": ["$values/redis.yaml"]}),
                "helm.valueFiles[0]",
            ),
            (
                json!({"valueFiles": ["https://x/v.yaml"]}),
                "helm.valueFiles[0]",
            ),
            (
                json!({"valueFiles": ["../../etc/passwd"]}),
                "helm.valueFiles[0]",
            ),
            (
                json!({"fileParameters": [{"name": "a", "path": "/etc/x"}]}),
                "helm.fileParameters[0].path",
            ),
            (
                json!({"parameters": [{"value": "x"}]}),
                "helm.parameters[0].name",
            ),
            (json!({"values": {"a": 1}}), "helm.values"),
        ] {
            let e = template(&helm, "shop", "ns", "v.yaml", &Default::default()).unwrap_err();
            assert!(e.starts_with(field), "{field}: {e}");
        }
    }
}
