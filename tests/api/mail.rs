//! Mail leaves through the outbox: receipts reach a real SMTP listener on loopback, a failing
//! server delays them without losing them, and managers see what could not be sent.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::Mutex;

use crate::helpers::{MANAGER, MEMBER, TestApp, spawn_app, spawn_app_with};

/// A minimal SMTP server: accepts every mail (or refuses them all with a 451).
struct SmtpSink {
    port: u16,
    received: Arc<Mutex<Vec<String>>>,
    refuse: Arc<AtomicBool>,
}

async fn smtp_sink() -> SmtpSink {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let received = Arc::new(Mutex::new(Vec::new()));
    let refuse = Arc::new(AtomicBool::new(false));
    let (inbox, refusing) = (received.clone(), refuse.clone());
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let (inbox, refusing) = (inbox.clone(), refusing.clone());
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut lines = BufReader::new(read).lines();
                let _ = write.write_all(b"220 localhost ESMTP test\r\n").await;
                while let Ok(Some(line)) = lines.next_line().await {
                    let verb = line.to_ascii_uppercase();
                    let answer: &[u8] = if verb.starts_with("EHLO") || verb.starts_with("HELO") {
                        b"250-localhost\r\n250 OK\r\n"
                    } else if verb.starts_with("MAIL FROM") {
                        if refusing.load(Ordering::SeqCst) {
                            b"451 4.3.0 try again later\r\n"
                        } else {
                            b"250 OK\r\n"
                        }
                    } else if verb.starts_with("DATA") {
                        let _ = write.write_all(b"354 go ahead\r\n").await;
                        let mut message = String::new();
                        while let Ok(Some(data)) = lines.next_line().await {
                            if data == "." {
                                break;
                            }
                            message.push_str(&data);
                            message.push('\n');
                        }
                        inbox.lock().await.push(message);
                        b"250 OK queued\r\n"
                    } else if verb.starts_with("QUIT") {
                        let _ = write.write_all(b"221 bye\r\n").await;
                        break;
                    } else {
                        b"250 OK\r\n"
                    };
                    let _ = write.write_all(answer).await;
                }
            });
        }
    });
    SmtpSink {
        port,
        received,
        refuse,
    }
}

async fn app_with_smtp(sink: &SmtpSink, max_attempts: i64) -> TestApp {
    let port = sink.port;
    spawn_app_with(move |s| {
        s.mail.transport = "smtp".into();
        s.mail.smtp_host = "127.0.0.1".into();
        s.mail.smtp_port = port;
        s.mail.smtp_tls = "none".into();
        s.mail.max_attempts = max_attempts;
    })
    .await
}

async fn pay(app: &TestApp, amount: &str) -> String {
    let browser = app.logged_in(MEMBER).await;
    let (id, hosted) = browser.start_payment(app, amount).await;
    browser.post_form(&hosted, &[("action", "pay")]).await;
    app.wait_for_status(&id, "paid").await;
    id
}

async fn wait_until(mut check: impl AsyncFnMut() -> bool) -> bool {
    for _ in 0..100 {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirmed_payment_sends_one_receipt_in_text_and_html() {
    let sink = smtp_sink().await;
    let app = app_with_smtp(&sink, 8).await;
    let id = pay(&app, "30").await;
    // A duplicate notification does not send a second receipt.
    let gateway_ref = app.gateway_ref(&id).await;
    let body = app.sandbox_event(&id, &gateway_ref, "succeeded", 3000);
    app.post_notification(body.clone(), Some(app.sign(&body)))
        .await;
    assert!(wait_until(async || !sink.received.lock().await.is_empty()).await);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let received = sink.received.lock().await;
    assert_eq!(received.len(), 1, "one receipt");
    let mail = &received[0];
    assert!(mail.contains("To: membre@exemple.org"), "{mail}");
    assert!(mail.contains("multipart/alternative"));
    assert!(mail.contains("text/plain") && mail.contains("text/html"));
    // Quoted-printable wraps long lines with a trailing '='.
    let unwrapped = mail.replace("=\n", "");
    assert!(unwrapped.contains(&format!("/payments/{id}")), "{mail}");
    assert!(unwrapped.contains("paiement de 30,00 =E2=82=AC"), "{mail}");
    assert!(unwrapped.contains("Bonjour Camille Martin"), "{mail}");
    assert_eq!(
        app.count("SELECT COUNT(*) FROM mail_outbox WHERE status = 'sent'")
            .await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_smtp_server_delays_mail_and_managers_see_it() {
    let sink = smtp_sink().await;
    sink.refuse.store(true, Ordering::SeqCst);
    let app = app_with_smtp(&sink, 8).await;
    pay(&app, "30").await;
    assert!(
        wait_until(async || {
            app.count("SELECT COUNT(*) FROM mail_outbox WHERE attempts > 0")
                .await
                == 1
        })
        .await
    );
    // Still pending, with a next attempt later; the payment itself was recorded.
    assert_eq!(
        app.count("SELECT COUNT(*) FROM mail_outbox WHERE status = 'pending'")
            .await,
        1
    );
    assert!(sink.received.lock().await.is_empty());
    let dashboard = app.logged_in(MANAGER).await.get("/admin").await;
    assert!(dashboard.body.contains("Courriels non envoyés"));
    assert!(
        dashboard
            .text_of("stuck-mail")
            .unwrap()
            .contains("nouvel essai prévu")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_given_up_after_the_last_attempt_is_shown_as_such() {
    let sink = smtp_sink().await;
    sink.refuse.store(true, Ordering::SeqCst);
    let app = app_with_smtp(&sink, 1).await;
    pay(&app, "30").await;
    assert!(
        wait_until(async || {
            app.count("SELECT COUNT(*) FROM mail_outbox WHERE status = 'failed'")
                .await
                == 1
        })
        .await
    );
    let dashboard = app.logged_in(MANAGER).await.get("/admin").await;
    assert!(
        dashboard
            .text_of("stuck-mail")
            .unwrap()
            .contains("abandonné")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_default_mail_is_written_to_files() {
    let app = spawn_app().await;
    pay(&app, "12").await;
    let dir = std::path::PathBuf::from(&app.settings.mail.dir);
    assert!(
        wait_until(async || std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0) == 1).await
    );
    let file = std::fs::read_dir(&dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let content = std::fs::read_to_string(file).unwrap();
    assert!(content.contains("To: membre@exemple.org"));
    std::fs::remove_dir_all(dir).ok();
}
