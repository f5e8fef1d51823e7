//! A TCP forwarder on 127.0.0.1 whose path can be cut and healed: a network partition between
//! a server and its database. Cut, it holds every byte it reads and opens no upstream
//! connection, so the connections stay open and nothing answers (as when packets are lost),
//! rather than failing fast as a refused connection would.

use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// The forwarder; it stops when the test's tokio runtime ends.
pub struct Partition {
    /// Where it listens.
    pub addr: SocketAddr,
    cut: watch::Sender<bool>,
}

impl Partition {
    /// Forwards a free port on 127.0.0.1 to `target`.
    pub async fn to(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (cut, watching) = watch::channel(false);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let mut open = watching.clone();
                tokio::spawn(async move {
                    if !wait_open(&mut open).await {
                        return;
                    }
                    let Ok(upstream) = TcpStream::connect(target).await else {
                        return;
                    };
                    let (client_read, client_write) = client.into_split();
                    let (upstream_read, upstream_write) = upstream.into_split();
                    tokio::spawn(pump(client_read, upstream_write, open.clone()));
                    pump(upstream_read, client_write, open).await;
                });
            }
        });
        Self { addr, cut }
    }

    /// Forwards to the Postgres server of a `postgres://` URL.
    pub async fn to_postgres(url: &str) -> Self {
        let authority = authority(url);
        let host_port = authority.rsplit('@').next().unwrap_or(authority);
        let target = tokio::net::lookup_host(host_port)
            .await
            .unwrap_or_else(|e| panic!("{host_port}: {e}"))
            .next()
            .expect("an address");
        Self::to(target).await
    }

    /// Stops forwarding: what is read is held, and new connections wait.
    pub fn cut(&self) {
        self.cut.send_replace(true);
    }

    /// Forwards again, held bytes first.
    pub fn heal(&self) {
        self.cut.send_replace(false);
    }
}

/// `url` with its host and port replaced by `addr` (user and database kept).
pub fn with_address(url: &str, addr: SocketAddr) -> String {
    let authority = authority(url);
    let host_port = authority.rsplit('@').next().unwrap_or(authority);
    let user = &authority[..authority.len() - host_port.len()];
    url.replacen(authority, &format!("{user}{addr}"), 1)
}

/// `user@host:port` of `scheme://user@host:port/path`.
fn authority(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    rest.split(['/', '?']).next().unwrap_or(rest)
}

/// Whether the path is open, waiting while it is cut; `false` once the partition is gone.
async fn wait_open(open: &mut watch::Receiver<bool>) -> bool {
    open.wait_for(|cut| !cut).await.is_ok()
}

/// Copies `from` to `to`, holding each chunk while the path is cut.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut open: watch::Receiver<bool>,
) {
    let mut buf = vec![0; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if !wait_open(&mut open).await || to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_is_pointed_at_another_address_keeping_its_user_and_database() {
        let addr: SocketAddr = "127.0.0.1:4321".parse().unwrap();
        assert_eq!(
            with_address("postgres://postgres@127.0.0.1:5432/portico_t_1", addr),
            "postgres://postgres@127.0.0.1:4321/portico_t_1"
        );
        assert_eq!(
            with_address("postgres://u:pw@db.internal/x?sslmode=disable", addr),
            "postgres://u:pw@127.0.0.1:4321/x?sslmode=disable"
        );
    }
}
