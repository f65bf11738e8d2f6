//! Phase 1, write throughput: creates/s and updates/s of ConfigMaps from one client and from
//! several concurrent ones, with kube-rs and with the raw HTTP client.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{anyhow, Context, Result};
use baton_sim::Sim;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};
use tokio::sync::Barrier;

use crate::raw_client::{str_field, RawClient};

#[derive(Clone, Copy)]
pub(crate) struct Rates {
    pub(crate) creates: f64,
    pub(crate) updates: f64,
}

/// Runs `clients` tasks, each making `per_client` creates, then (after all creates are done)
/// `per_client` updates; the aggregate rates of both phases.
async fn throughput<F, Fut>(clients: usize, per_client: usize, mut task: F) -> Result<Rates>
where
    F: FnMut(usize, Arc<Barrier>) -> Fut,
    Fut: std::future::Future<Output = Result<()>> + Send + 'static,
{
    let barrier = Arc::new(Barrier::new(clients + 1));
    let futs: Vec<Fut> = (0..clients).map(|c| task(c, barrier.clone())).collect();
    let t0 = Instant::now();
    let handles: Vec<_> = futs.into_iter().map(tokio::spawn).collect();
    barrier.wait().await;
    let t1 = Instant::now();
    for h in handles {
        h.await.context("a writer task panicked")??;
    }
    let t2 = Instant::now();
    let n = (clients * per_client) as f64;
    Ok(Rates {
        creates: n / (t1 - t0).as_secs_f64(),
        updates: n / (t2 - t1).as_secs_f64(),
    })
}

pub(crate) async fn kube_throughput(sim: &Sim, ns: &str, clients: usize, per_client: usize) -> Result<Rates> {
    let tag = format!("kube{clients}");
    let mut apis = Vec::with_capacity(clients);
    for c in 0..clients {
        let client = sim
            .client_as(&format!("sim-bench-kube-{c}"))
            .await
            .context("building a kube client")?;
        apis.push(Api::<ConfigMap>::namespaced(client, ns));
    }
    let mut apis = apis.into_iter();
    throughput(clients, per_client, move |c, barrier| {
        let api = apis.next();
        let tag = tag.clone();
        async move {
            let api = api.ok_or_else(|| anyhow!("no client for writer {c}"))?;
            let pp = PostParams::default();
            let mut created = Vec::with_capacity(per_client);
            let mut result = Ok(());
            for i in 0..per_client {
                let cm = ConfigMap {
                    metadata: ObjectMeta {
                        name: Some(format!("{tag}-{c}-{i}")),
                        ..ObjectMeta::default()
                    },
                    data: Some(BTreeMap::from([("value".to_string(), "0".to_string())])),
                    ..ConfigMap::default()
                };
                match api.create(&pp, &cm).await {
                    Ok(o) => created.push(o),
                    Err(e) => {
                        result = Err(anyhow!("kube-rs create {tag}-{c}-{i}: {e}"));
                        break;
                    }
                }
            }
            // Always reach the barrier, so a failed writer cannot hang the others.
            barrier.wait().await;
            result?;
            for mut cm in created {
                let name = cm.metadata.name.clone().unwrap_or_default();
                cm.data = Some(BTreeMap::from([("value".to_string(), "1".to_string())]));
                api.replace(&name, &pp, &cm)
                    .await
                    .map_err(|e| anyhow!("kube-rs replace {name}: {e}"))?;
            }
            Ok(())
        }
    })
    .await
}

pub(crate) async fn raw_throughput(addr: SocketAddr, ns: &str, clients: usize, per_client: usize) -> Result<Rates> {
    let mut conns = Vec::with_capacity(clients);
    for c in 0..clients {
        conns.push(RawClient::connect(addr, &format!("sim-bench-raw-{c}")).await?);
    }
    let mut conns = conns.into_iter();
    let base = format!("/api/v1/namespaces/{ns}/configmaps");
    let tag = format!("raw{clients}");
    throughput(clients, per_client, move |c, barrier| {
        let conn = conns.next();
        let base = base.clone();
        let tag = tag.clone();
        async move {
            let mut conn = conn.ok_or_else(|| anyhow!("no connection for writer {c}"))?;
            let mut rvs = Vec::with_capacity(per_client);
            let mut result = Ok(());
            for i in 0..per_client {
                let body = format!(
                    r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"{tag}-{c}-{i}"}},"data":{{"value":"0"}}}}"#
                );
                match conn.ok("POST", &base, body.as_bytes()).await {
                    Ok(out) => match str_field(&out, "resourceVersion") {
                        Some(rv) => rvs.push(rv.to_string()),
                        None => {
                            result = Err(anyhow!("create {tag}-{c}-{i}: no resourceVersion in the reply"));
                            break;
                        }
                    },
                    Err(e) => {
                        result = Err(e);
                        break;
                    }
                }
            }
            barrier.wait().await;
            result?;
            for (i, rv) in rvs.iter().enumerate() {
                let body = format!(
                    r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"{tag}-{c}-{i}","resourceVersion":"{rv}"}},"data":{{"value":"1"}}}}"#
                );
                conn.ok("PUT", &format!("{base}/{tag}-{c}-{i}"), body.as_bytes()).await?;
            }
            Ok(())
        }
    })
    .await
}
