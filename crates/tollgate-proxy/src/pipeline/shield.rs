//! The per-IP shield (`server.ip_requests_per_second`): before anything costs
//! work, authentication included.

use pingora_proxy::Session;

use pingora_limits::rate::Rate;

use super::verdict::{Refusal, Verdict};
use crate::snapshot::Snapshot;

pub fn check(ip_rate: &Rate, session: &Session, snap: &Snapshot) -> Verdict {
    let Some(limit) = snap.config.server.ip_requests_per_second else {
        return Ok(());
    };
    let Some(ip) = session.client_addr().and_then(|a| a.as_inet()).map(|a| a.ip()) else {
        return Ok(());
    };
    if ip_rate.observe(&ip, 1) > limit as isize {
        let r = Refusal::new(429, "API rate limit exceeded (server.ip_requests_per_second)")
            .with_header("retry-after", "1");
        return Err(r.into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::pipeline::test_support::{config, get, request, request_from, snapshot};
    use crate::pipeline::Stop;

    /// A window longer than the test, so counts never reset mid-test.
    fn rate() -> Rate {
        Rate::new(Duration::from_secs(3600))
    }

    #[tokio::test]
    async fn an_ip_over_its_rate_is_refused_with_429_and_retry_after() {
        let snap = snapshot(&config("[server]\nip_requests_per_second = 2"));
        let rate = rate();
        for _ in 0..2 {
            let (s, _client) = request(&get("/chat", &[])).await;
            assert!(check(&rate, &s, &snap).is_ok());
        }
        let (s, _client) = request(&get("/chat", &[])).await;
        let Err(Stop::Refuse(r)) = check(&rate, &s, &snap) else { panic!("the third request is refused") };
        assert_eq!(r.status, 429);
        assert_eq!(r.message, "API rate limit exceeded (server.ip_requests_per_second)");
        assert_eq!(r.headers, [("retry-after".to_string(), "1".to_string())]);
        // Another address has its own count.
        let (s, _client) = request_from("198.51.100.9:5000", &get("/chat", &[])).await;
        assert!(check(&rate, &s, &snap).is_ok());
    }

    #[tokio::test]
    async fn without_the_setting_no_ip_is_counted() {
        let snap = snapshot(&config(""));
        let rate = rate();
        for _ in 0..5 {
            let (s, _client) = request(&get("/chat", &[])).await;
            assert!(check(&rate, &s, &snap).is_ok());
        }
        assert_eq!(rate.observe(&"203.0.113.7".parse::<std::net::IpAddr>().expect("ip"), 0), 0);
    }
}
