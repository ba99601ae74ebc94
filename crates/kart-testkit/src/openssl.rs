//! An independent issuer built with the system `openssl` command, for the
//! PKI and security-object tests: keys, a root CA and certificates it signs.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Minimal openssl config so `req`/`x509` add exactly the extensions we ask for.
const OPENSSL_CNF: &str = "\
[req]
distinguished_name = dn
prompt = no
[dn]
[ca_ext]
basicConstraints = critical,CA:TRUE,pathlen:1
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[leaf_ext]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[leaf_no_ku]
basicConstraints = CA:FALSE
subjectKeyIdentifier = hash
";

/// Run `openssl args...` in `dir`, returning its output whatever the status.
pub fn openssl_output(dir: &Path, args: &[&str]) -> Output {
    crate::process::output(
        Command::new("openssl").args(args).current_dir(dir),
        "the openssl command must be installed (scripts/setup installs it)",
    )
}

/// Run `openssl args...` in `dir` and require success.
pub fn openssl(dir: &Path, args: &[&str]) -> Output {
    crate::process::run_ok(
        Command::new("openssl").args(args).current_dir(dir),
        "the openssl command must be installed (scripts/setup installs it)",
    )
}

fn cnf(dir: &Path) -> PathBuf {
    let path = dir.join("openssl.cnf");
    if !path.exists() {
        std::fs::write(&path, OPENSSL_CNF).expect("write openssl.cnf");
    }
    path
}

/// `openssl ecparam -genkey` (SEC1) converted to PKCS#8 `<name>.key`.
pub fn ec_key(dir: &Path, name: &str, curve: &str) -> PathBuf {
    let sec1 = format!("{name}.sec1.pem");
    let key = format!("{name}.key");
    openssl(
        dir,
        &[
            "ecparam", "-name", curve, "-genkey", "-noout", "-out", &sec1,
        ],
    );
    openssl(
        dir,
        &["pkcs8", "-topk8", "-nocrypt", "-in", &sec1, "-out", &key],
    );
    dir.join(key)
}

/// `openssl genpkey -algorithm <algorithm> -pkeyopt <option> -out <file>` in `dir`.
pub fn genpkey(dir: &Path, file: &str, algorithm: &str, option: &str) -> PathBuf {
    genpkey_with(dir, file, algorithm, option, &[])
}

/// [`genpkey`] with `extra` options before `-out` (such as `-aes256 -pass file:pw`).
pub fn genpkey_with(
    dir: &Path,
    file: &str,
    algorithm: &str,
    option: &str,
    extra: &[&str],
) -> PathBuf {
    let mut args = vec!["genpkey", "-algorithm", algorithm, "-pkeyopt", option];
    args.extend_from_slice(extra);
    args.extend(["-out", file]);
    openssl(dir, &args);
    dir.join(file)
}

/// A 2048-bit RSA PKCS#8 key `<name>.key`.
pub fn rsa_key(dir: &Path, name: &str) -> PathBuf {
    genpkey(dir, &format!("{name}.key"), "RSA", "rsa_keygen_bits:2048")
}

/// Self-signed CA `<name>.pem` (pathlen 1, keyCertSign) with key `<key>`.
pub fn root_ca(dir: &Path, name: &str, key: &Path, subj: &str, days: u32) -> PathBuf {
    let cnf = cnf(dir);
    let out = format!("{name}.pem");
    let mut args = vec![
        "req",
        "-x509",
        "-new",
        "-config",
        utf8(&cnf),
        "-extensions",
        "ca_ext",
    ];
    args.extend(["-key", utf8(key), "-subj", subj]);
    signed(dir, &args, days, &out);
    dir.join(out)
}

/// Certificate `<name>.pem` for `key`, signed by `ca`/`ca_key`, extensions
/// from section `ext` (`leaf_ext`, `leaf_no_ku` or `ca_ext`).
#[allow(clippy::too_many_arguments)]
pub fn issue(
    dir: &Path,
    name: &str,
    key: &Path,
    subj: &str,
    ca: &Path,
    ca_key: &Path,
    ext: &str,
    days: u32,
) -> PathBuf {
    let cnf = cnf(dir);
    let cnf = utf8(&cnf);
    let csr = format!("{name}.csr");
    let out = format!("{name}.pem");
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-config",
            cnf,
            "-key",
            utf8(key),
            "-subj",
            subj,
            "-out",
            &csr,
        ],
    );
    let mut args = vec![
        "x509",
        "-req",
        "-in",
        &csr,
        "-CA",
        utf8(ca),
        "-CAkey",
        utf8(ca_key),
    ];
    args.extend(["-CAcreateserial", "-extfile", cnf, "-extensions", ext]);
    signed(dir, &args, days, &out);
    dir.join(out)
}

/// Runs `openssl args… -days <days> -sha256 -out <out>`: a certificate
/// valid for `days`, signed with SHA-256.
fn signed(dir: &Path, args: &[&str], days: u32, out: &str) {
    let days = days.to_string();
    let mut all = args.to_vec();
    all.extend(["-days", &days, "-sha256", "-out", out]);
    openssl(dir, &all);
}

fn utf8(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

/// An EC key `<name>.key` on `curve` and the self-signed CA `<name>.pem`
/// over it: `(certificate, key)`.
pub fn ec_root(dir: &Path, name: &str, curve: &str, subj: &str, days: u32) -> (PathBuf, PathBuf) {
    let key = ec_key(dir, name, curve);
    (root_ca(dir, name, &key, subj, days), key)
}

/// An EC key `<name>.key` on `curve` and its certificate `<name>.pem` signed
/// by `ca` = (certificate, key) with extensions `ext`: `(certificate, key)`.
pub fn ec_leaf(
    dir: &Path,
    name: &str,
    curve: &str,
    subj: &str,
    ca: (&Path, &Path),
    ext: &str,
    days: u32,
) -> (PathBuf, PathBuf) {
    let key = ec_key(dir, name, curve);
    (issue(dir, name, &key, subj, ca.0, ca.1, ext, days), key)
}

/// `openssl cms -verify -binary -purpose any` of the DER security object in
/// file `sod` against the CA file `ca`, writing the signed content to `out`
/// (paths relative to `dir`); the output whatever the status. A successful
/// verification says "Verification successful" on stderr.
pub fn cms_verify(dir: &Path, sod: &str, ca: &str, out: &str) -> Output {
    openssl_output(
        dir,
        &[
            "cms", "-verify", "-inform", "DER", "-in", sod, "-CAfile", ca, "-binary", "-purpose",
            "any", "-out", out,
        ],
    )
}
