"""Where `Portal()` finds the portal and the token: argument, environment, config file."""

import pytest
from portal_client import Portal, PortalError


@pytest.fixture
def config_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.delenv("PORTAL_URL", raising=False)
    monkeypatch.delenv("PORTAL_TOKEN", raising=False)
    (tmp_path / "portal").mkdir()
    return tmp_path / "portal" / "config.toml"


def test_the_config_file_is_read_and_the_environment_and_arguments_come_first(
    config_home, monkeypatch
):
    config_home.write_text('url = "http://portal.example:8000/"\ntoken = "spt_file"\n')
    portal = Portal()
    assert (portal.url, portal.token) == ("http://portal.example:8000", "spt_file")
    assert portal.session.headers["Authorization"] == "Token spt_file"

    monkeypatch.setenv("PORTAL_TOKEN", "spt_env")
    assert Portal().token == "spt_env"
    assert Portal(token="spt_arg").token == "spt_arg"


def test_without_an_address_it_says_where_to_put_one(config_home):
    with pytest.raises(PortalError) as missing:
        Portal()
    assert missing.value.code == "no_url" and "config.toml" in missing.value.detail
