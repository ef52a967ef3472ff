//! Argo CD's cluster Secrets (`argocd.argoproj.io/secret-type: cluster`) as connections: the
//! Secret's `server` and its `config` JSON — a bearer token, TLS client settings, an exec
//! provider — become the kubeconfig they stand for, so a cluster Argo CD deploys to is one
//! driftwatch can sync to without a kubeconfig of its own.

use serde_json::{Value, json};

use super::KubeClient;
use crate::error::Error;

/// The kubeconfig (as JSON, one context named `argocd`) that Argo CD's cluster `config` means
/// for `server`. Unsupported ways in (AWS IAM through `awsAuthConfig`) are refused by name.
pub(crate) fn kubeconfig_of(server: &str, config: &Value) -> Result<Value, String> {
    if config.get("awsAuthConfig").is_some_and(|v| !v.is_null()) {
        return Err(
            "config.awsAuthConfig is not supported; use execProviderConfig (aws eks get-token)"
                .to_owned(),
        );
    }
    let tls = config.get("tlsClientConfig").cloned().unwrap_or(json!({}));
    let text = |v: &Value, k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let mut cluster = json!({ "server": server });
    if let Some(ca) = text(&tls, "caData") {
        cluster["certificate-authority-data"] = json!(ca);
    }
    if tls.get("insecure").and_then(Value::as_bool) == Some(true) {
        cluster["insecure-skip-tls-verify"] = json!(true);
    }
    if let Some(name) = text(&tls, "serverName") {
        cluster["tls-server-name"] = json!(name);
    }
    let mut user = json!({});
    if let Some(token) = text(config, "bearerToken") {
        user["token"] = json!(token);
    }
    if let Some(cert) = text(&tls, "certData") {
        user["client-certificate-data"] = json!(cert);
    }
    if let Some(key) = text(&tls, "keyData") {
        user["client-key-data"] = json!(key);
    }
    if let Some(username) = text(config, "username") {
        user["username"] = json!(username);
        if let Some(password) = text(config, "password") {
            user["password"] = json!(password);
        }
    }
    if let Some(exec) = config.get("execProviderConfig").filter(|v| v.is_object()) {
        let command = text(exec, "command")
            .ok_or_else(|| "config.execProviderConfig has no command".to_owned())?;
        let env: Vec<Value> = exec
            .get("env")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| json!({"name": k, "value": v.as_str().unwrap_or("")}))
                    .collect()
            })
            .unwrap_or_default();
        user["exec"] = json!({
            "apiVersion": text(exec, "apiVersion")
                .unwrap_or_else(|| "client.authentication.k8s.io/v1beta1".to_owned()),
            "command": command,
            "args": exec.get("args").cloned().unwrap_or(json!([])),
            "env": env,
        });
    }
    if user.as_object().is_some_and(serde_json::Map::is_empty) {
        return Err(
            "config names no credentials (bearerToken, tlsClientConfig.certData/keyData, username/password or execProviderConfig)"
                .to_owned(),
        );
    }
    Ok(json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "argocd", "cluster": cluster}],
        "users": [{"name": "argocd", "user": user}],
        "contexts": [{"name": "argocd", "context": {"cluster": "argocd", "user": "argocd"}}],
        "current-context": "argocd",
    }))
}

impl KubeClient {
    /// A client for the cluster an Argo CD cluster Secret describes: its `server` and `config`
    /// (the Secret's decoded `data`). `secret` names the Secret in errors, which never carry
    /// its credentials.
    pub fn from_argocd_cluster(secret: &str, server: &str, config: &Value) -> Result<Self, Error> {
        let fail = |reason: String| Error::Kubeconfig {
            file: format!("Argo CD cluster Secret {secret}"),
            context: None,
            reason,
        };
        let doc = kubeconfig_of(server, config).map_err(fail)?;
        let kubeconfig: kube::config::Kubeconfig =
            serde_json::from_value(doc).map_err(|e| fail(format!("config: {e}")))?;
        Self::from_parsed(
            kubeconfig,
            format!("Argo CD cluster Secret {secret} ({server})"),
        )
        .map_err(|e| match e {
            Error::Kubeconfig { reason, .. } => fail(reason),
            other => other,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_token_and_tls_settings_become_one_context() {
        let k = kubeconfig_of(
            "https://prod.example:6443",
            &json!({"bearerToken": "t0k3n", "tlsClientConfig": {"insecure": false, "caData": "Q0E=", "serverName": "api.prod"}}),
        )
        .unwrap();
        let cluster = &k["clusters"][0]["cluster"];
        assert_eq!(cluster["server"], "https://prod.example:6443");
        assert_eq!(cluster["certificate-authority-data"], "Q0E=");
        assert_eq!(cluster["tls-server-name"], "api.prod");
        assert!(cluster.get("insecure-skip-tls-verify").is_none());
        assert_eq!(k["users"][0]["user"]["token"], "t0k3n");
    }

    #[test]
    fn client_certificates_and_exec_providers_are_taken_and_aws_iam_is_refused() {
        let k = kubeconfig_of(
            "https://c",
            &json!({"tlsClientConfig": {"certData": "Y2VydA==", "keyData": "a2V5", "insecure": true},
                    "execProviderConfig": {"command": "aws", "args": ["eks", "get-token"], "env": {"AWS_PROFILE": "p"}}}),
        )
        .unwrap();
        let user = &k["users"][0]["user"];
        assert_eq!(user["client-certificate-data"], "Y2VydA==");
        assert_eq!(user["exec"]["command"], "aws");
        assert_eq!(
            user["exec"]["env"][0],
            json!({"name": "AWS_PROFILE", "value": "p"})
        );
        assert_eq!(
            k["clusters"][0]["cluster"]["insecure-skip-tls-verify"],
            true
        );
        let aws = kubeconfig_of("https://c", &json!({"awsAuthConfig": {"clusterName": "x"}}));
        assert!(aws.unwrap_err().contains("awsAuthConfig"));
        let none = kubeconfig_of("https://c", &json!({"tlsClientConfig": {}}));
        assert!(none.unwrap_err().contains("no credentials"));
    }

    #[test]
    fn errors_name_the_secret_and_never_its_token() {
        let err = KubeClient::from_argocd_cluster(
            "argocd/prod",
            "https://c",
            &json!({"bearerToken": "s3cr3t-token", "tlsClientConfig": {"caData": "not base64!"}}),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("argocd/prod"), "{err}");
        assert!(!err.contains("s3cr3t-token"), "{err}");
    }
}
