//! A TCP proxy between one client and kube-apiserver (TLS passes through untouched: the server's
//! certificate names 127.0.0.1). Blocked, it forwards nothing in either direction, so requests
//! in flight and new ones hang as over a partitioned network; [`FaultProxy::cut`] closes every
//! connection (a dropped watch).

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct FaultProxy {
    pub addr: SocketAddr,
    blocked: watch::Sender<bool>,
    generation: watch::Sender<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FaultProxy {
    /// Listen on a free loopback port, forwarding to `upstream` (`host:port`).
    pub async fn start(upstream: String) -> Result<FaultProxy, String> {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        std_listener.set_nonblocking(true).map_err(|e| e.to_string())?;
        let listener = {
            let _guard = runtime().enter();
            TcpListener::from_std(std_listener).map_err(|e| e.to_string())?
        };
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let (blocked, blocked_rx) = watch::channel(false);
        let (generation, gen_rx) = watch::channel(0u64);
        let upstream = Arc::new(upstream);
        let task = runtime().spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (up, blocked, gen) = (upstream.clone(), blocked_rx.clone(), gen_rx.clone());
                tokio::spawn(async move {
                    let _ = serve(client, &up, blocked, gen).await;
                });
            }
        });
        Ok(FaultProxy {
            addr,
            blocked,
            generation,
            task,
        })
    }

    pub fn block(&self) {
        self.blocked.send_replace(true);
    }

    pub fn unblock(&self) {
        self.blocked.send_replace(false);
    }

    /// Close every open connection (clients reconnect).
    pub fn cut(&self) {
        self.generation.send_modify(|g| *g += 1);
    }
}

/// The proxies' own runtime (one thread): forwarding bytes must not wait behind the test's work
/// (recording every change, sampling the apps) on a loaded machine.
fn runtime() -> &'static tokio::runtime::Handle {
    static RT: std::sync::OnceLock<tokio::runtime::Handle> = std::sync::OnceLock::new();
    RT.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the proxies");
            let _ = tx.send(rt.handle().clone());
            rt.block_on(std::future::pending::<()>());
        });
        rx.recv().expect("the proxy runtime starts")
    })
}

async fn serve(
    client: TcpStream,
    upstream: &str,
    blocked: watch::Receiver<bool>,
    mut gen: watch::Receiver<u64>,
) -> std::io::Result<()> {
    wait_open(&mut blocked.clone()).await;
    let server = TcpStream::connect(upstream).await?;
    let (cr, cw) = client.into_split();
    let (sr, sw) = server.into_split();
    gen.mark_unchanged();
    tokio::select! {
        _ = pump(cr, sw, blocked.clone()) => {}
        _ = pump(sr, cw, blocked) => {}
        _ = gen.changed() => {}
    }
    Ok(())
}

/// Until the proxy is not blocked.
async fn wait_open(blocked: &mut watch::Receiver<bool>) {
    let _ = blocked.wait_for(|b| !*b).await;
}

/// Copy `from` to `to`, holding each chunk while the proxy is blocked.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut blocked: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            let _ = to.shutdown().await;
            return Ok(());
        }
        wait_open(&mut blocked).await;
        to.write_all(&buf[..n]).await?;
    }
}
