//! A headless Chromium driven over W3C WebDriver: `chromedriver` on a free loopback port and a
//! handful of JSON requests over plain HTTP — enough to open a page, run a script in it and
//! take a screenshot, without a WebDriver crate and its dependencies.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};

use crate::TempDir;
use crate::http::request;

/// A browser session; the session and the driver end when it drops.
pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    _profile: TempDir,
}

fn find(names: &[&str]) -> Option<String> {
    let path = std::env::var_os("PATH")?;
    names.iter().find_map(|n| {
        std::env::split_paths(&path)
            .map(|d| d.join(n))
            .find(|p| p.is_file())
            .map(|p| p.display().to_string())
    })
}

impl Browser {
    /// Starts `chromedriver` and a headless Chromium session. `Err` says why it cannot (not
    /// installed, or it would not start), so a test can skip with that reason.
    pub fn start() -> Result<Self, String> {
        let chromium = find(&["chromium", "chromium-browser", "google-chrome"])
            .ok_or("chromium is not installed (scripts/install-deps installs it)")?;
        let driver = find(&["chromedriver"]).ok_or(
            "chromedriver is not installed (scripts/install-deps installs chromium-driver)",
        )?;
        let port = crate::free_port();
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("chromedriver did not start: {e}"))?;
        let profile = TempDir::new("chromium");
        let mut browser = Browser {
            driver: child,
            base: format!("http://127.0.0.1:{port}"),
            session: String::new(),
            _profile: profile,
        };
        if !crate::wait_for_port(port, Duration::from_secs(10)) {
            return Err("chromedriver did not listen".to_owned());
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                // Headless as root in a container: no sandbox, no /dev/shm reliance.
                "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1280,800",
                         format!("--user-data-dir={}", browser._profile.path().display())],
            }
        }}});
        let v = browser.call("POST", "/session", &caps)?;
        browser.session = v["sessionId"]
            .as_str()
            .ok_or_else(|| format!("no session: {v}"))?
            .to_owned();
        Ok(browser)
    }

    /// One WebDriver command; its `value`, or the error it answered.
    fn call(&self, method: &str, path: &str, body: &Value) -> Result<Value, String> {
        let body = if method == "GET" || method == "DELETE" {
            Vec::new()
        } else {
            body.to_string().into_bytes()
        };
        let (status, _, out) = request(
            method,
            &format!("{}{path}", self.base),
            &[("Content-Type", "application/json")],
            &body,
        )
        .map_err(|e| format!("webdriver {path}: {e}"))?;
        let v: Value = serde_json::from_slice(&out)
            .map_err(|e| format!("webdriver {path}: {e}: {}", String::from_utf8_lossy(&out)))?;
        if status != 200 {
            return Err(format!("webdriver {path}: {status} {v}"));
        }
        Ok(v["value"].clone())
    }

    fn session_call(&self, method: &str, path: &str, body: &Value) -> Value {
        self.call(method, &format!("/session/{}{path}", self.session), body)
            .expect("webdriver command")
    }

    /// Opens `url` and waits for it to load.
    pub fn goto(&self, url: &str) {
        self.session_call("POST", "/url", &json!({ "url": url }));
    }

    /// Runs `script` (a function body; `return` gives the result) in the page.
    pub fn eval(&self, script: &str) -> Value {
        self.session_call(
            "POST",
            "/execute/sync",
            &json!({ "script": script, "args": [] }),
        )
    }

    /// A PNG of the viewport.
    pub fn screenshot(&self) -> Vec<u8> {
        let v = self.session_call("GET", "/screenshot", &Value::Null);
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap_or_default())
            .expect("screenshot is base64")
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self.call(
                "DELETE",
                &format!("/session/{}", self.session),
                &Value::Null,
            );
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
