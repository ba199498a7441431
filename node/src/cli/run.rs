//! `ledger-node run`: start the node, serve the API, stop cleanly on SIGINT/SIGTERM.

use anyhow::Context;

use super::ConfigArgs;
use crate::keyfile;
use crate::node::{self, read_genesis};

pub fn run(args: &ConfigArgs) -> anyhow::Result<()> {
    let cfg = args.load()?;
    init_logging(&cfg.log_level);
    let genesis = read_genesis(&cfg.genesis)?;
    let key = cfg.node_key.as_deref().map(keyfile::read).transpose()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("ledger-node")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let mut node = node::start(&cfg, genesis, key).await?;
        let network = crate::network::service::attach(&cfg, &mut node)?;
        let mut router = node.router.clone();
        // Chaos-test controls: only with a token, only for loopback clients (see network::control),
        // behind the API's own limits.
        if let (Some(net), Ok(token)) = (&network, std::env::var("LEDGER_CONTROL_TOKEN"))
            && !token.is_empty()
        {
            router = crate::api::router_with(
                node.api.clone(),
                crate::network::control::router(net.clone(), token),
            );
        }
        let listener = tokio::net::TcpListener::bind(cfg.api.listen_addr)
            .await
            .with_context(|| {
                format!("cannot listen on {} (api.listen_addr)", cfg.api.listen_addr)
            })?;
        let addr = listener.local_addr()?;
        tracing::info!(%addr, "HTTP API listening");
        let stopped = node.driver_stopped();
        let (signalled_tx, mut signalled_rx) = tokio::sync::watch::channel(false);
        let limits = crate::api::ServerLimits {
            header_read_timeout: std::time::Duration::from_millis(cfg.api.header_read_timeout_ms),
            max_connections: cfg.api.max_connections,
            max_connections_per_client: cfg.api.max_connections_per_client,
        };
        let serve = crate::api::serve(listener, router, limits, node.metrics.clone(), async move {
            tokio::select! {
                () = shutdown_signal() => tracing::info!("shutdown signal received"),
                () = stopped => {}
            }
            let _ = signalled_tx.send(true);
        });
        // Graceful shutdown waits for every connection, and an event stream (an open explorer tab)
        // never ends by itself: give connections a bounded grace period, then stop anyway.
        let grace = async move {
            let _ = signalled_rx.wait_for(|s| *s).await;
            tokio::time::sleep(std::time::Duration::from_secs(3)).await;
        };
        tokio::select! {
            () = serve => {}
            () = grace => tracing::info!("closing connections still open after the grace period"),
        }
        node.shutdown().await.context("shutdown")?;
        tracing::info!("stopped cleanly");
        anyhow::Ok(())
    })
}

fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
