//! The access report as an auditor opens it: the HTML page in a real headless browser
//! (chromium), offline, with its charts drawn. The screenshot's pixels are counted, not the
//! DOM: a chart that is in the page but renders empty fails. The screenshot is kept as
//! `target/report-screenshot.png`.

#![allow(clippy::disallowed_methods)] // runs jitctl, chromium and python3: this is the edge

use std::path::{Path, PathBuf};
use std::process::Command;

use jitd_tests::{Daemon, as_user, ensure_user, run, sandbox, stderr, stdout};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn jitctl() -> PathBuf {
    workspace().join("target/debug/jitctl")
}

/// Counts, per colour, the pixels of a PNG (8-bit RGB/RGBA, not interlaced) that are exactly
/// that colour; python3's zlib does the inflating.
const COUNT_PIXELS: &str = r#"
import sys, zlib, struct
data = open(sys.argv[1], 'rb').read()
pos, idat, w, h, ct = 8, b'', 0, 0, 0
while pos < len(data):
    n, t = struct.unpack('>I4s', data[pos:pos+8]); body = data[pos+8:pos+8+n]; pos += 12 + n
    if t == b'IHDR': w, h, depth, ct = struct.unpack('>IIBB', body[:10])
    elif t == b'IDAT': idat += body
bpp = 4 if ct == 6 else 3
raw, stride = zlib.decompress(idat), w * bpp
prev, rows, i = bytearray(stride), [], 0
for _ in range(h):
    f = raw[i]; line = bytearray(raw[i+1:i+1+stride]); i += 1 + stride
    for x in range(stride):
        a = line[x-bpp] if x >= bpp else 0; b = prev[x]; c = prev[x-bpp] if x >= bpp else 0
        if f == 1: line[x] = (line[x] + a) & 255
        elif f == 2: line[x] = (line[x] + b) & 255
        elif f == 3: line[x] = (line[x] + (a + b) // 2) & 255
        elif f == 4:
            p = a + b - c; pa, pb, pc = abs(p-a), abs(p-b), abs(p-c)
            line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    rows.append(line); prev = line
for hexc in sys.argv[2:]:
    want = bytes.fromhex(hexc)
    print(hexc, sum(1 for r in rows for x in range(0, stride, bpp) if r[x:x+3] == want))
"#;

#[test]
#[ignore = "end-to-end: needs chromium and python3 (tests/deps)"]
fn html_report_renders_its_charts_in_a_headless_browser() {
    let dir = std::env::temp_dir().join(format!("jitd-report-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = Command::new(jitctl())
        .args(["generate-history", "--out"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut exports: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    exports.sort();
    let out = Command::new(jitctl())
        .args([
            "report", "--period", "2026Q4", "--format", "html", "--policy",
        ])
        .arg(dir.join("policy.toml"))
        .arg("--hosts")
        .args(&exports)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let page = dir.join("report.html");
    std::fs::write(&page, &out.stdout).unwrap();
    let shot = workspace().join("target/report-screenshot.png");
    let _ = std::fs::remove_file(&shot);
    // No network is needed or allowed: the page is one file.
    let browser = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--hide-scrollbars",
            "--proxy-server=127.0.0.1:9",
            "--window-size=1400,2600",
        ])
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium is installed (tests/deps)");
    assert!(
        shot.exists(),
        "no screenshot: {}",
        String::from_utf8_lossy(&browser.stderr)
    );
    let counted = Command::new("python3")
        .args(["-c", COUNT_PIXELS])
        .arg(&shot)
        .args(["1f77b4", "ff7f0e", "2ca02c"])
        .output()
        .unwrap();
    assert!(
        counted.status.success(),
        "{}",
        String::from_utf8_lossy(&counted.stderr)
    );
    let text = String::from_utf8_lossy(&counted.stdout);
    let count = |hex: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(hex).map(|n| n.trim().parse().unwrap()))
            .unwrap()
    };
    // Bars of the five charts: blue in every chart, orange and green in the stacked ones.
    // A page whose SVG did not render has none of these exact colours.
    assert!(count("1f77b4") > 20_000, "blue bars: {text}");
    assert!(count("ff7f0e") > 10_000, "orange bars: {text}");
    assert!(count("2ca02c") > 5_000, "green bars: {text}");
    let _ = std::fs::remove_dir_all(&dir);
}

fn generated(dir: &Path) -> Vec<PathBuf> {
    let out = Command::new(jitctl())
        .args(["generate-history", "--out"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut exports: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    exports.sort();
    exports
}

/// The shorten-max suggestion for rule web, applied to the running daemon's policy file: the
/// policy check passes, the acceptance is in the audit trail, and after a reload alice's next
/// request is held to the new maximum.
#[test]
#[ignore = "end-to-end: run by tests/run inside the sandbox"]
fn applied_shorten_max_suggestion_holds_the_next_request_to_the_new_maximum() {
    let sb = sandbox();
    for user in ["alice", "carol", "grace", "bob", "erin", "frank", "dave"] {
        ensure_user(user);
    }
    let history = sb.dir.join("history");
    let exports = generated(&history);
    let policy = std::fs::read_to_string(history.join("policy.toml")).unwrap();
    let d = Daemon::start(&sb, "report-apply", &policy);
    let policy_file = d.dir.join("policy.toml");
    let elevate = || {
        as_user(
            "alice",
            &[
                "jitctl",
                "elevate",
                "nginx-restart",
                "--for",
                "2h",
                "--reason",
                "restart after config change",
            ],
        )
    };
    let before = elevate();
    assert!(before.status.success(), "{}", stderr(&before));
    let text = stdout(&before);
    let grant = text
        .split(|c: char| !c.is_ascii_alphanumeric())
        .find(|w| {
            w.len() == 13 && w.starts_with('g') && w[1..].chars().all(|c| c.is_ascii_hexdigit())
        })
        .unwrap_or_else(|| panic!("no grant id in {text}"))
        .to_string();
    let o = as_user("alice", &["jitctl", "drop", &grant]);
    assert!(o.status.success(), "{}", stderr(&o));

    let o = run(Command::new(jitctl())
        .args(["suggest", "--format", "json", "--policy"])
        .arg(&policy_file)
        .arg("--hosts")
        .args(&exports));
    assert!(o.status.success(), "{}", stderr(&o));
    let doc: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let id = doc["suggestions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["type"] == "shorten-max-duration" && s["subject"] == "rule web")
        .map(|s| s["id"].as_str().unwrap().to_string())
        .expect("a shorten-max suggestion for rule web");
    let o = run(Command::new(jitctl())
        .args(["suggest", "--apply", &id, "--to"])
        .arg(&policy_file)
        .arg("--policy")
        .arg(&policy_file)
        .arg("--db")
        .arg(d.state_db())
        .arg("--hosts")
        .args(&exports));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        std::fs::read_to_string(&policy_file)
            .unwrap()
            .contains("max_duration = \"30m\"")
    );
    assert!(!d.dir.join("policy.toml.tmp").exists());
    let o = run(Command::new("jitctl").arg("reload"));
    assert!(o.status.success(), "{}", stderr(&o));
    // Before, 2h fitted under the rule's 4h; now the policy refuses it and names the new maximum.
    let after = elevate();
    assert_eq!(after.status.code(), Some(3), "{}", stderr(&after));
    assert!(
        stderr(&after).contains("above the maximum 30m of rule \"web\""),
        "{}",
        stderr(&after)
    );
    let o = run(Command::new("sqlite3")
        .arg(d.state_db())
        .arg("SELECT line FROM audit WHERE line LIKE 'event=suggestion.accepted%'"));
    assert!(
        stdout(&o).contains(&format!("id={id} kind=shorten-max-duration")),
        "{}",
        stdout(&o)
    );
    let o = run(Command::new("jitctl").args(["audit", "verify"]));
    assert!(o.status.success(), "{}", stdout(&o));

    // The daemon's own database as the input: its chain verified, alice's two requests in it.
    let report = || {
        run(Command::new(jitctl())
            .args([
                "report",
                "--since",
                "2020-01-01",
                "--format",
                "json",
                "--policy",
            ])
            .arg(&policy_file)
            .arg("--hosts")
            .arg(d.state_db()))
    };
    let o = report();
    assert!(o.status.success(), "{}", stderr(&o));
    let doc: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(
        doc["integrity"][0]["kind"], "verified",
        "{}",
        doc["integrity"]
    );
    assert_eq!(
        doc["population"].as_array().unwrap().len(),
        1,
        "{}",
        doc["population"]
    );
    assert_eq!(doc["denials"], 1);
    // One record changed in place: the whole database is refused.
    let o = run(Command::new("sqlite3").arg(d.state_db()).arg(
        "UPDATE audit SET line = replace(line, 'restart after', 'restart before') \
         WHERE seq = (SELECT min(seq) FROM audit WHERE line LIKE '%restart after%')",
    ));
    assert!(o.status.success(), "{}", stderr(&o));
    let o = report();
    assert_eq!(o.status.code(), Some(9), "{}", stdout(&o));
    assert!(
        stderr(&o).contains("the audit chain does not verify"),
        "{}",
        stderr(&o)
    );
}

fn review_file(dir: &Path, exports: &[PathBuf], reviewer: &str) -> PathBuf {
    let o = run(Command::new(jitctl())
        .args([
            "access-review",
            "start",
            "--period",
            "2026Q4",
            "--site",
            "example.org",
            "--policy",
        ])
        .arg(dir.join("policy.toml"))
        .arg("--hosts")
        .args(exports));
    assert!(o.status.success(), "{}", stderr(&o));
    // The reviewer follows the recommendations, with a reason for each.
    let mut text = stdout(&o).replacen("reviewer = \"\"", &format!("reviewer = \"{reviewer}\""), 1);
    let items: Vec<String> = text.split("\n[[item]]").map(str::to_string).collect();
    text = items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            if i == 0 {
                return item.clone();
            }
            let decision = if item.contains("# suggested: remove") {
                "remove"
            } else {
                "keep"
            };
            item.replace("decision = \"\"", &format!("decision = \"{decision}\""))
                .replace(
                    "justification = \"\"",
                    "justification = \"confirmed with the team lead\"",
                )
        })
        .collect::<Vec<_>>()
        .join("\n[[item]]");
    let file = dir.join(format!("review-{reviewer}.toml"));
    std::fs::write(&file, text).unwrap();
    let o = run(Command::new("ssh-keygen")
        .args(["-q", "-Y", "sign", "-n", "jitd-review-v1@example.org", "-f"])
        .arg(dir.join("key"))
        .arg(&file));
    assert!(o.status.success(), "{}", stderr(&o));
    file
}

/// A signed access review: the reviewer's signature is checked against the reviewers file, the
/// removals come out as the policy change, the signed file is kept; a changed file, or a
/// reviewer reviewing their own access, is refused. The report is signed the same way.
#[test]
#[ignore = "end-to-end: needs ssh-keygen"]
fn signed_access_review_is_verified_and_kept() {
    let dir = std::env::temp_dir().join(format!("jitd-review-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let exports = generated(&dir);
    let o = run(Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "rita", "-f"])
        .arg(dir.join("key")));
    assert!(o.status.success(), "{}", stderr(&o));
    let public = std::fs::read_to_string(dir.join("key.pub")).unwrap();
    let public: Vec<&str> = public.split_whitespace().take(2).collect();
    let signers = dir.join("reviewers");
    std::fs::write(
        &signers,
        format!("rita {0} {1}\ndave {0} {1}\n", public[0], public[1]),
    )
    .unwrap();
    let apply = |file: &Path| {
        run(Command::new(jitctl())
            .args(["access-review", "apply"])
            .arg(file)
            .arg("--signers")
            .arg(&signers)
            .arg("--evidence")
            .arg(dir.join("evidence"))
            .arg("--policy")
            .arg(dir.join("policy.toml"))
            .arg("--hosts")
            .args(&exports))
    };
    let file = review_file(&dir, &exports, "rita");
    let o = apply(&file);
    assert!(o.status.success(), "{}", stderr(&o));
    // grace never used rule web: she comes out of it.
    assert!(
        stdout(&o).contains("users = [\"alice\", \"carol\"]"),
        "{}",
        stdout(&o)
    );
    let kept: Vec<String> = std::fs::read_dir(dir.join("evidence"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(kept.len(), 2, "{kept:?}");
    // One word changed after signing.
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(
        &file,
        text.replacen("confirmed with the team lead", "ok", 1),
    )
    .unwrap();
    let o = apply(&file);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("does not verify as rita's"),
        "{}",
        stderr(&o)
    );
    // dave is in rule release: his signature is good, his review is not.
    let o = apply(&review_file(&dir, &exports, "dave"));
    assert!(
        stderr(&o).contains("dave may not review their own access"),
        "{}",
        stderr(&o)
    );
    // The report, signed.
    let report = dir.join("q4.txt");
    let o = run(Command::new(jitctl())
        .args(["report", "--period", "2026Q4", "--output"])
        .arg(&report)
        .arg("--sign")
        .arg(dir.join("key"))
        .arg("--policy")
        .arg(dir.join("policy.toml"))
        .arg("--hosts")
        .args(&exports));
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(Command::new("ssh-keygen")
        .args(["-Y", "verify", "-I", "rita", "-n", "jitd-report-v1", "-f"])
        .arg(&signers)
        .arg("-s")
        .arg(format!("{}.sig", report.display()))
        .stdin(std::fs::File::open(&report).unwrap()));
    assert!(o.status.success(), "{}", stderr(&o));
    let _ = std::fs::remove_dir_all(&dir);
}
