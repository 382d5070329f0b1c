//! Builds the SvelteKit UI (`web/`) and generates `assets.rs`, the table of embedded files.
//!
//! 1. Unless `VOIDRUNNER_SKIP_WEB_BUILD=1`, and when `npm` runs: `npm ci` (only when
//!    `node_modules` is missing or older than `package-lock.json`), then `npm run build` into
//!    `$OUT_DIR/web`. Cargo re-runs this script only when the web sources change.
//! 2. The embedded tree is that fresh build, else a prebuilt `web/build`, else a one-page
//!    "UI not built" placeholder. A missing or failing npm never fails the cargo build: it
//!    prints a cargo warning and falls back.
//! 3. Every file is embedded with `include_bytes!`, with its content type, an ETag (SHA-256),
//!    a gzip copy when that is smaller, and for HTML the hashes of its inline scripts, which
//!    the server puts in the page's Content-Security-Policy.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use sha2::{Digest, Sha256};

const SKIP_ENV: &str = "VOIDRUNNER_SKIP_WEB_BUILD";
const WATCHED: &[&str] = &[
    "src",
    "static",
    "package.json",
    "package-lock.json",
    "svelte.config.js",
    "vite.config.ts",
    "tsconfig.json",
];

fn main() {
    let manifest = PathBuf::from(env("CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(env("OUT_DIR"));
    let web = manifest.join("../../web");
    println!("cargo:rerun-if-env-changed={SKIP_ENV}");
    println!("cargo:rerun-if-changed=build.rs");
    for w in WATCHED {
        println!("cargo:rerun-if-changed={}", web.join(w).display());
    }
    // A path that does not exist would make cargo re-run this script on every build.
    if web.join("build").exists() {
        println!("cargo:rerun-if-changed={}", web.join("build").display());
    }

    let fresh = out.join("web");
    let skip = std::env::var(SKIP_ENV).is_ok_and(|v| v == "1" || v == "true");
    let built = if skip || !web.join("package.json").exists() {
        false
    } else {
        match build_ui(&web, &fresh) {
            Ok(()) => true,
            Err(why) => {
                warn(&format!("web UI not rebuilt: {why}"));
                false
            }
        }
    };
    let (root, is_real) = if built {
        (fresh, true)
    } else if web.join("build/index.html").exists() {
        if !skip {
            warn("embedding the prebuilt web/build (it may be stale)");
        }
        (web.join("build"), true)
    } else {
        warn("embedding a 'UI not built' page: run `cd web && npm ci && npm run build`");
        (placeholder(&out), false)
    };
    let code = generate(&root, &out, is_real);
    let target = out.join("assets.rs");
    if std::fs::read_to_string(&target).ok().as_deref() != Some(code.as_str()) {
        write(&target, code.as_bytes());
    }
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("cargo sets {name}"))
}

fn warn(msg: &str) {
    println!("cargo:warning={msg}");
}

fn write(path: &Path, bytes: &[u8]) {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
    }
    std::fs::write(path, bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// Runs `npm ci` when needed and `npm run build` into `dest`.
fn build_ui(web: &Path, dest: &Path) -> Result<(), String> {
    let npm = Command::new("npm").arg("--version").output();
    if !npm.is_ok_and(|o| o.status.success()) {
        return Err("npm not found; install Node.js 20+ and npm".into());
    }
    if needs_install(web) {
        run(web, &["ci", "--no-audit", "--no-fund"], None)?;
    }
    // web/tsconfig.json extends the default `.svelte-kit/tsconfig.json`; a fresh clone has none
    // (the build below writes SvelteKit's files to a per-target-dir work dir), and Vite fails
    // on the missing file. `svelte-kit sync` writes it.
    run(web, &["exec", "--", "svelte-kit", "sync"], None)?;
    let _ = std::fs::remove_dir_all(dest);
    run(web, &["run", "build"], Some(dest))?;
    if dest.join("index.html").exists() {
        Ok(())
    } else {
        Err(format!(
            "`npm run build` wrote no {}",
            dest.join("index.html").display()
        ))
    }
}

fn needs_install(web: &Path) -> bool {
    let modified = |p: PathBuf| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    match (
        modified(web.join("node_modules/.package-lock.json")),
        modified(web.join("package-lock.json")),
    ) {
        (Some(installed), Some(lock)) => installed < lock,
        _ => true,
    }
}

fn run(web: &Path, args: &[&str], out: Option<&Path>) -> Result<(), String> {
    let mut cmd = Command::new("npm");
    cmd.args(args).current_dir(web);
    if let Some(out) = out {
        cmd.env("VOIDRUNNER_WEB_OUT", out);
        // Inside web/ (so Node resolves web/node_modules), one per cargo target dir.
        let tag = hex8(&Sha256::digest(out.to_string_lossy().as_bytes()));
        cmd.env(
            "VOIDRUNNER_KIT_OUT_DIR",
            web.join(format!("node_modules/.cache/voidrunner-kit-{tag}")),
        );
    }
    let output = cmd
        .output()
        .map_err(|e| format!("npm {}: {e}", args.join(" ")))?;
    // Cargo shows a build script's output only when it fails or with -vv.
    let _ = std::io::stderr().write_all(&output.stdout);
    let _ = std::io::stderr().write_all(&output.stderr);
    if output.status.success() {
        Ok(())
    } else {
        let tail = String::from_utf8_lossy(&output.stderr);
        let tail: String = tail.lines().rev().take(3).collect::<Vec<_>>().join(" | ");
        Err(format!(
            "`npm {}` failed ({}): {tail}",
            args.join(" "),
            output.status
        ))
    }
}

fn placeholder(out: &Path) -> PathBuf {
    let dir = out.join("placeholder");
    let html = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>VoidRunner: UI not built</title></head>\
<body style=\"font-family: system-ui, sans-serif; max-width: 40rem; margin: 4rem auto; padding: 0 1rem\">\
<h1>UI not built</h1>\
<p>This VoidRunner binary was built without its web UI (npm was missing, failed, or \
<code>VOIDRUNNER_SKIP_WEB_BUILD=1</code> was set).</p>\
<p>Install Node.js 20+ and npm, then run <code>cd web &amp;&amp; npm ci &amp;&amp; npm run build</code> \
and rebuild the binary (<code>cargo build --release</code>).</p>\
<p>The API is unaffected: see <a href=\"/api/v1/openapi.json\">/api/v1/openapi.json</a>.</p>\
</body></html>\n";
    write(&dir.join("index.html"), html.as_bytes());
    dir
}

fn files(dir: &Path, acc: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            files(&path, acc);
        } else {
            acc.push(path);
        }
    }
}

fn mime(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "ico" => "image/x-icon",
        "webp" => "image/webp",
        "woff2" => "font/woff2",
        "woff" => "font/woff",
        "txt" => "text/plain; charset=utf-8",
        "webmanifest" => "application/manifest+json",
        "wasm" => "application/wasm",
        _ => "application/octet-stream",
    }
}

fn compressible(mime: &str) -> bool {
    mime.starts_with("text/") || mime.contains("json") || mime.contains("svg")
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let _ = enc.write_all(bytes);
    enc.finish().unwrap_or_default()
}

/// `sha256-…` of every inline (no `src`) `<script>` body in an HTML page.
fn inline_script_hashes(html: &str) -> Vec<String> {
    let mut hashes = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find("<script") {
        rest = &rest[start..];
        let Some(open_end) = rest.find('>') else {
            break;
        };
        let attrs = &rest[..open_end];
        let body_start = open_end + 1;
        let Some(close) = rest[body_start..].find("</script>") else {
            break;
        };
        let body = &rest[body_start..body_start + close];
        if !attrs.contains(" src=") && !body.is_empty() {
            let digest = Sha256::digest(body.as_bytes());
            let b64 = base64::engine::general_purpose::STANDARD.encode(digest);
            hashes.push(format!("sha256-{b64}"));
        }
        rest = &rest[body_start + close..];
    }
    hashes
}

fn generate(root: &Path, out: &Path, is_real: bool) -> String {
    let mut all = Vec::new();
    files(root, &mut all);
    let gz_dir = out.join("gz");
    let _ = std::fs::remove_dir_all(&gz_dir);
    let mut code = String::from("// @generated by build.rs\n");
    let _ = writeln!(code, "pub(crate) const BUILT: bool = {is_real};");
    code.push_str("pub(crate) static ASSETS: &[Asset] = &[\n");
    for (i, file) in all.iter().enumerate() {
        let Ok(rel) = file.strip_prefix(root) else {
            continue;
        };
        let url = format!("/{}", rel.to_string_lossy().replace('\\', "/"));
        let bytes = std::fs::read(file).unwrap_or_else(|e| panic!("read {}: {e}", file.display()));
        let mime = mime(file);
        let etag = hex8(&Sha256::digest(&bytes));
        let gz = if compressible(mime) && bytes.len() > 256 {
            let packed = gzip(&bytes);
            if packed.len() < bytes.len() {
                let path = gz_dir.join(format!("{i}.gz"));
                write(&path, &packed);
                format!("Some(include_bytes!({:?}))", path.display().to_string())
            } else {
                "None".into()
            }
        } else {
            "None".into()
        };
        let hashes = if mime.starts_with("text/html") {
            inline_script_hashes(&String::from_utf8_lossy(&bytes))
        } else {
            Vec::new()
        };
        let _ = writeln!(
            code,
            "    Asset {{ path: {url:?}, mime: {mime:?}, body: include_bytes!({:?}), gzip: {gz}, \
             etag: \"\\\"{etag}\\\"\", immutable: {}, script_hashes: &{hashes:?} }},",
            file.display().to_string(),
            url.starts_with("/_app/immutable/"),
        );
    }
    code.push_str("];\n");
    code
}

fn hex8(digest: &[u8]) -> String {
    digest.iter().take(12).fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}
