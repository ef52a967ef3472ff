//! An application's cluster by the name an Argo CD destination gives it: a cluster Secret
//! (`argocd.argoproj.io/secret-type: cluster`) beside the Applications, found by its `name` or
//! its `server`, connects with the token and CA it holds — to a second API server (the real one
//! of `DRIFTWATCH_E2E_KUBECONFIG_B`, else a second in-process fake). A name nothing matches, or
//! a Secret without credentials, is an error naming what was looked for, never a token.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use driftwatch_cluster::{KubeClient, KubeTarget};
use driftwatch_testkit::TempDir;
use driftwatch_testkit::kube::Cluster;

#[tokio::test]
async fn an_argocd_destination_is_reached_through_its_cluster_secret() {
    let dir = TempDir::new("argocd-clusters");
    let a = Cluster::new(dir.path());
    let b = Cluster::second(dir.path(), "b");
    let argocd = a.unique_namespace("argocd");
    a.create_namespace(&argocd);
    // A namespace only B has: listing it proves which cluster a client reached.
    let marker = b.unique_namespace("only-in-b");
    b.create_namespace(&marker);
    let token = b.admin_token(&marker);
    let config = serde_json::json!({
        "bearerToken": token,
        "tlsClientConfig": {"insecure": false, "caData": b.ca_data()},
    })
    .to_string();
    let server = b.server();
    let label = [("argocd.argoproj.io/secret-type", "cluster")];
    a.create_secret(
        &argocd,
        "cluster-prod",
        "Opaque",
        &label,
        &[("name", "prod"), ("server", &server), ("config", &config)],
    );
    a.create_secret(
        &argocd,
        "cluster-bare",
        "Opaque",
        &label,
        &[
            ("name", "bare"),
            ("server", "https://bare.example:6443"),
            ("config", "{\"tlsClientConfig\":{}}"),
        ],
    );
    let default = Arc::new(KubeClient::from_kubeconfig(&a.kubeconfig).unwrap());
    let resolve = driftwatch_service::clusters::resolver(
        KubeTarget::file(&a.kubeconfig),
        default,
        Some(argocd.clone()),
    );
    let names_of = |list: Vec<serde_json::Value>| -> Vec<String> {
        list.iter()
            .filter_map(|n| n["metadata"]["name"].as_str().map(str::to_owned))
            .collect()
    };
    for name in ["prod".to_owned(), server.clone(), format!("{server}/")] {
        let client = resolve(name.clone())
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let namespaces = names_of(client.list("v1", "Namespace", "").await.unwrap());
        assert!(namespaces.contains(&marker), "{name}: {namespaces:?}");
    }
    let err = match resolve("nowhere".to_owned()).await {
        Err(e) => e,
        Ok(_) => panic!("a cluster nobody names was found"),
    };
    assert!(
        err.contains("\"nowhere\"") && err.contains(&argocd) && err.contains("no such context"),
        "{err}"
    );
    let err = match resolve("bare".to_owned()).await {
        Err(e) => e,
        Ok(_) => panic!("a Secret without credentials connected"),
    };
    assert!(
        err.contains(&format!("{argocd}/cluster-bare")) && err.contains("no credentials"),
        "{err}"
    );
    if a.is_real() {
        assert!(!err.contains(&token) && !token.is_empty());
    }
}
