"""workbook/scan.py: the secret scanner, on strings and on real images built here."""

import base64
import secrets
import shutil

import pytest

from workbook import ROOT, bases, images, resources, scan

OWNER = "test_scan"
SECRETS = ROOT / "docker" / "security" / "secrets"
AWS_EXAMPLE = "AKIAIOSFODNN7EXAMPLE"  # the key id AWS's own documentation uses


def test_mask_never_shows_the_whole_secret():
    for value in ("secret123", "demo-" + secrets.token_urlsafe(24), "abcdef", AWS_EXAMPLE):
        masked = scan.mask(value)
        assert value not in masked and masked.startswith(value[:2]) and "*" in masked


def _token():
    return "ghp_" + secrets.token_hex(18)  # GitHub's classic token shape: ghp_ + 36 characters


@pytest.mark.parametrize("text, kind", [
    ("API_KEY=secret123", "api-key"),
    ("DB_PASSWORD=hunter22", "api-key"),
    ("/bin/sh -c #(nop)  ENV SECRET_KEY=abcdef12", "api-key"),
    ("deploy.token=" + "x7" * 8, "api-key"),
    (f"aws_access_key_id {AWS_EXAMPLE}", "aws-key"),
    ("-----BEGIN OPENSSH PRIVATE KEY-----", "private-key"),
    ("-----BEGIN PRIVATE KEY-----", "private-key"),
])
def test_each_pattern_finds_its_kind(text, kind):
    found = scan.scan_text(text, "config Env")
    assert [f.kind for f in found] == [kind]
    assert found[0].where == "config Env" and found[0].path is None


def test_a_token_is_found_and_masked():
    token = _token()
    (finding,) = scan.scan_text(f"--header 'Authorization: {token}'", "config Cmd")
    assert finding.kind == "token" and token not in finding.excerpt


@pytest.mark.parametrize("text", [
    "PATH=/usr/local/sbin:/usr/local/bin", "API_TOKEN_FILE=/run/secrets/api_token",
    "API_KEY=$API_KEY", "TOKEN=${TOKEN}", "PASSWORD=<your password>", "TOKEN=abc",
    "MODEL_SHA256=c940d9a0e6a3", "LOG_LEVEL=info", "REDIS_URL=redis://redis:6379/0",
    "/bin/sh -c #(nop)  CMD [\"gunicorn\", \"--config\", \"gunicorn.conf.py\", \"app:create_app()\"]",
])
def test_settings_that_are_not_secrets(text):
    assert scan.scan_text(text, "config Env") == []


def test_source_code_is_not_read_as_settings():
    code = b"token = next(tokens)\npassword = getpass.getpass()\nAPI_KEY = os.environ['API_KEY']\n"
    assert scan.scan_file("app/app.py", code, "layer 3") == []


def test_binary_files_are_skipped():
    assert scan.scan_file("usr/bin/tool", b"\x7fELF\0\0" + AWS_EXAMPLE.encode(), "layer 1") == []


@pytest.mark.parametrize("path, expected", [
    ("app/.env", True), ("app/.env.production", True), ("srv/prod.env", True),
    ("app/.env.example", False), ("app/.env.sample", False), ("app/environment.py", False),
    ("app/Dockerfile.env-secret", False),
])
def test_env_file_names(path, expected):
    assert scan.is_env_file(path) is expected


def test_describe():
    assert scan.describe([]) == "no secrets found"
    text = scan.describe([scan.Finding("layer 3", ".env file", "/app/.env", "API_KEY=de********",
                                       "deleted by layer 4: still in the image, in layer 3")])
    assert text.count("\n") == 0 and "/app/.env" in text and "deleted by layer 4" in text


# --- real images -------------------------------------------------------------------------

def _private_key():
    body = base64.b64encode(secrets.token_bytes(180)).decode()
    return f"-----BEGIN OPENSSH PRIVATE KEY-----\n{body}\n-----END OPENSSH PRIVATE KEY-----\n"


@pytest.fixture(scope="module")
def built(client, tmp_path_factory):
    """Images with known secrets (and without): name -> (image, the secrets planted)."""
    args = {"DEBIAN_IMAGE": bases.build_args(client)["DEBIAN_IMAGE"]}
    out = {}

    def build(name, context, dockerfile="Dockerfile"):
        return images.build(client, context, f"workbook/test-scan:{name}", OWNER, dockerfile=dockerfile,
                            buildargs=args, log="none")

    out["env"] = build("env", SECRETS, "Dockerfile.env-secret"), ["secret123"]
    out["fixed"] = build("fixed", SECRETS), []
    leaky = tmp_path_factory.mktemp("leaky")
    shutil.copy(SECRETS / "use_key.sh", leaky)
    shutil.copy(SECRETS / "Dockerfile.copy-secret", leaky / "Dockerfile")
    key = "demo-" + secrets.token_urlsafe(24)
    (leaky / ".env").write_text(f"API_KEY={key}\n")
    out["copy"] = build("copy", leaky), [key]
    shutil.copy(SECRETS / ".dockerignore", leaky)
    out["ignored"] = build("ignored", leaky), []
    # One file per kind, a key deleted by a later layer, a token in a label, a password in ENV.
    kinds = tmp_path_factory.mktemp("kinds")
    (kinds / "srv").mkdir()
    planted = {"srv/id_ed25519": _private_key(), "srv/config.json": f'{{"key_id": "{AWS_EXAMPLE}"}}\n',
               "srv/notes.md": f"deploy with {_token()}\n", "srv/prod.env": "SECRET_KEY=" + secrets.token_hex(8)}
    for path, text in planted.items():
        (kinds / path).write_text(text)
    label_token = _token()
    (kinds / "Dockerfile").write_text(
        f"FROM {args['DEBIAN_IMAGE']}\nCOPY srv/ /srv/\nRUN rm /srv/id_ed25519\n"
        f"LABEL deploy.token={label_token}\nENV DB_PASSWORD=hunter2hunter2\n")
    out["kinds"] = build("kinds", kinds), [label_token, "hunter2hunter2", *planted.values()]
    yield out
    resources.cleanup(client, OWNER)


def _leaks_nothing(findings, planted):
    shown = scan.describe(findings)
    return not any(secret.strip() in shown for secret in planted)


def test_env_secret_is_found_in_config_and_history(client, built):
    image, planted = built["env"]
    findings = scan.scan_image(client, image)
    assert {f.where.split()[0] for f in findings} == {"config", "history"}
    assert {f.kind for f in findings} == {"api-key"}
    assert _leaks_nothing(findings, planted)


def test_a_copied_then_deleted_secret_is_found_in_its_layer(client, built):
    image, planted = built["copy"]
    (finding,) = scan.scan_image(client, image.tags[0])  # a name works as well as an Image
    assert finding.kind == ".env file" and finding.path == "/app/.env"
    assert finding.where == "layer 3" and finding.note.startswith("deleted by layer 4")
    assert _leaks_nothing([finding], planted)


def test_every_kind_is_found_where_it_was_planted(client, built):
    image, planted = built["kinds"]
    findings = scan.scan_image(client, image)
    where = {(f.kind, f.path or f.where) for f in findings}
    assert ("private-key", "/srv/id_ed25519") in where
    assert ("aws-key", "/srv/config.json") in where
    assert ("token", "/srv/notes.md") in where
    assert (".env file", "/srv/prod.env") in where
    assert ("api-key", "config Labels") in where and ("api-key", "config Env") in where
    (key,) = [f for f in findings if f.kind == "private-key"]
    assert key.note.startswith("deleted by layer 3")
    assert _leaks_nothing(findings, planted)


@pytest.mark.parametrize("name", ["fixed", "ignored"])
def test_the_fixed_images_hold_no_secret(client, built, name):
    assert scan.scan_image(client, built[name][0]) == []


@pytest.mark.parametrize("key", ["debian", "production"])
def test_real_images_without_secrets_report_nothing(client, production, key):
    # production holds every layer of the python-slim base too
    ref = bases.build_args(client)["DEBIAN_IMAGE"] if key == "debian" else production.tags[0]
    assert scan.scan_image(client, ref) == [], f"false positives in {ref}"
