//! What several broker test files share: a TCP proxy in front of the broker, to lose,
//! stall and refuse connections on demand, and small helpers.

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::StreamExt as _;
use nameko_amqp::AmqpUri;
use nameko_transport::{Consumer, Delivery, Message, Properties, TransportStatus};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A message whose body is `id` and whose `message_id` is `id`.
pub fn msg(id: &str) -> Message {
    Message::new(id.to_owned(), Properties::json().with_message_id(id))
}

/// The `message_id` of a delivery.
pub fn id_of(delivery: &Delivery) -> String {
    delivery.properties().message_id.clone().unwrap_or_default()
}

/// The next delivery, failing the test after `secs` seconds.
pub async fn next(consumer: &mut Consumer, secs: u64) -> Delivery {
    match tokio::time::timeout(Duration::from_secs(secs), consumer.next()).await {
        Ok(Some(Ok(delivery))) => delivery,
        Ok(Some(Err(e))) => panic!("the consumer failed: {e}"),
        Ok(None) => panic!("the consumer ended"),
        Err(_) => panic!("nothing arrived within {secs}s"),
    }
}

/// Fails the test if anything arrives within `millis`.
pub async fn quiet(consumer: &mut Consumer, millis: u64) {
    if let Ok(item) = tokio::time::timeout(Duration::from_millis(millis), consumer.next()).await {
        panic!("expected nothing, got {item:?}");
    }
}

/// Waits until the status satisfies `pred`, failing the test after `secs` seconds.
pub async fn wait_status(
    status: &mut watch::Receiver<TransportStatus>,
    secs: u64,
    what: &str,
    pred: impl Fn(&TransportStatus) -> bool,
) -> TransportStatus {
    let result = tokio::time::timeout(Duration::from_secs(secs), async {
        loop {
            let current = status.borrow_and_update().clone();
            if pred(&current) {
                return current;
            }
            if status.changed().await.is_err() {
                return status.borrow().clone();
            }
        }
    })
    .await;
    match result {
        Ok(found) if pred(&found) => found,
        Ok(other) => panic!("waiting for {what}: the status watch closed at {other:?}"),
        Err(_) => panic!(
            "waiting for {what}: status still {:?} after {secs}s",
            *status.borrow()
        ),
    }
}

/// A TCP proxy between the transport and the broker.
pub struct Proxy {
    addr: SocketAddr,
    control: Arc<Control>,
    accept_task: tokio::task::JoinHandle<()>,
}

struct Control {
    /// Refuse (close at once) new connections.
    refusing: AtomicBool,
    /// Bumped to cut every connection open at the time.
    sever: watch::Sender<u64>,
    /// Bumped to stall every connection open at the time: bytes stop flowing both ways.
    stall: watch::Sender<u64>,
}

impl Proxy {
    /// Starts a proxy on a free local port, forwarding to `upstream` (`host:port`).
    pub async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the proxy");
        let addr = listener.local_addr().expect("proxy address");
        let control = Arc::new(Control {
            refusing: AtomicBool::new(false),
            sever: watch::channel(0).0,
            stall: watch::channel(0).0,
        });
        let ctl = Arc::clone(&control);
        let accept_task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if ctl.refusing.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let Ok(server) = TcpStream::connect(&upstream).await else {
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                tokio::spawn(forward(client, server, Arc::clone(&ctl)));
            }
        });
        Self {
            addr,
            control,
            accept_task,
        }
    }

    /// A proxy in front of the broker of `uri`, and the URI to reach the broker through it.
    pub async fn in_front_of(uri: &str) -> (Self, String) {
        let parsed: AmqpUri = uri.parse().expect("test broker URI");
        let proxy = Self::start(format!("{}:{}", parsed.host(), parsed.port())).await;
        let via = uri.replacen(
            &format!("@{}:{}", parsed.host(), parsed.port()),
            &format!("@{}", proxy.addr),
            1,
        );
        assert!(
            via.contains(&proxy.addr.to_string()),
            "the test URI must name host and port explicitly"
        );
        (proxy, via)
    }

    /// Cuts every open connection (the broker sees the client vanish).
    pub fn sever(&self) {
        self.control.sever.send_modify(|n| *n += 1);
    }

    /// Stops every open connection's traffic without closing it, as a dead network does.
    pub fn stall(&self) {
        self.control.stall.send_modify(|n| *n += 1);
    }

    /// Refuses new connections (as a stopped broker does), or accepts them again.
    pub fn refuse(&self, refusing: bool) {
        self.control.refusing.store(refusing, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept_task.abort();
        self.sever();
    }
}

async fn forward(client: TcpStream, server: TcpStream, control: Arc<Control>) {
    let mut sever = control.sever.subscribe();
    let mut stall = control.stall.subscribe();
    sever.borrow_and_update();
    stall.borrow_and_update();
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let pump = async {
        let mut up = [0_u8; 16 * 1024];
        let mut down = [0_u8; 16 * 1024];
        loop {
            tokio::select! {
                read = client_read.read(&mut up) => match read {
                    Ok(0) | Err(_) => return,
                    Ok(n) => if server_write.write_all(&up[..n]).await.is_err() { return },
                },
                read = server_read.read(&mut down) => match read {
                    Ok(0) | Err(_) => return,
                    Ok(n) => if client_write.write_all(&down[..n]).await.is_err() { return },
                },
            }
        }
    };
    tokio::select! {
        () = pump => {}
        _ = sever.changed() => {}
        _ = stall.changed() => {
            // Hold both sockets open and silent until severed.
            let _ = sever.changed().await;
        }
    }
}
