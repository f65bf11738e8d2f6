//! sim-only: a controller whose watches lag. kube-apiserver's watch cache can run behind etcd
//! under load, and the controller then decides from caches older than what its own reads and
//! the agents' writes show. Here every watch event reaches the controller 1 s after its write
//! (`Faults::delay_watches`; the agents' watches and everyone's requests are prompt) while a pod
//! is drained and, with its drain lifted, another pod is deleted: every listener still runs in
//! exactly one app, no fencing token goes back, status never counts a listener running before an
//! acknowledgement, and every listener ends on a live pod.
use std::time::{Duration, Instant};

use crate::harness::{listeners, Ns};
use crate::{assert_clean, ok};

const LONG: Duration = Duration::from_secs(90);
const LAG: Duration = Duration::from_secs(1);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_only_a_controller_whose_watches_lag_hands_every_listener_over_once() {
    let ns = Ns::plain("lagging").await;
    let ctl = ok(ns.start_controller().await);
    for p in ["lg-a", "lg-b", "lg-c"] {
        ok(ns.create_pod(p).await);
    }
    let (spec, keys) = listeners("lag", 30);
    ok(ns.create_set("lag", spec, 5).await);
    ok(ns.settled("lag", 30, "all thirty running", LONG).await);
    let lag = ns.cluster.sim().faults.delay_watches(Some(&ctl), LAG);

    let t0 = Instant::now();
    ok(ns.drain("lg-a", true).await);
    ok(ns
        .wait_running("every listener off the drained lg-a", &keys, LONG, |pod| pod != "lg-a")
        .await);
    let took = t0.elapsed();
    println!("drain with the controller's watches {LAG:?} behind: {took:?}");
    assert!(
        took >= LAG,
        "the controller learns of the drain through its lagging watch: {took:?}"
    );

    ok(ns.drain("lg-a", false).await);
    let t1 = Instant::now();
    ok(ns.delete_pod("lg-b", 30).await);
    ok(ns
        .wait_running("every listener on lg-a or lg-c", &keys, LONG, |pod| pod != "lg-b")
        .await);
    println!("lg-b deleted, its listeners moved: {:?}", t1.elapsed());
    ns.cluster.sim().faults.remove_rule(&lag);
    ok(ns.settled("lag", 30, "the Leases and the apps agree", LONG).await);
    assert_clean(&ns, true);
}
