"""Headless Chromium and Firefox ESR (browsers we did not write) against our server on 127.0.0.1.

One browser process per browser for the whole module: its page (tests/interop/page.html)
polls the test's HTTP endpoint for work, so every scenario of tests/interop/scenarios.py
runs in both browsers the same way. Each scenario gets a fresh server. If a browser cannot
start, its scenarios FAIL (they are never skipped): .ci/browsers.sh installs both.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from pywebtransport.utils import SelfSignedCertificate, generate_self_signed_cert

from .browsers import BROWSERS, BrowserError, BrowserProcess
from .driver import PageDriver
from .scenarios import SCENARIOS, Rig, Scenario, serving

pytestmark = [pytest.mark.interop, pytest.mark.timeout(180), pytest.mark.asyncio(loop_scope="module")]

PAGE = (Path(__file__).parent / "page.html").read_text()

#: Time for a cold browser to start and load the page, on a busy 2-core machine.
START_TIMEOUT = 90.0


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> SelfSignedCertificate:
    return generate_self_signed_cert("localhost", output_dir=tmp_path_factory.mktemp("interop-cert"))


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=BROWSERS)
async def page(request: pytest.FixtureRequest,
               cert: SelfSignedCertificate) -> AsyncIterator[tuple[BrowserProcess, PageDriver]]:
    """One browser, started once for the module, showing the page; the driver runs commands in it."""
    driver = PageDriver(PAGE.replace("__HASH__", json.dumps(list(cert.sha256))))
    await driver.start()
    browser = BrowserProcess(request.param, driver.url)
    try:
        await browser.start()
        try:
            await driver.wait_polled(START_TIMEOUT)
        except asyncio.TimeoutError:
            raise BrowserError(f"{browser.name} did not load the page within {START_TIMEOUT}s; its output:\n"
                               f"{browser.log_tail()}") from None
        yield browser, driver
    finally:
        await browser.close()
        await driver.close()


@pytest_asyncio.fixture(loop_scope="module")
async def rig(page: tuple[BrowserProcess, PageDriver], cert: SelfSignedCertificate) -> AsyncIterator[Rig]:
    browser, driver = page
    async with serving(cert) as (server, seen):
        yield Rig(browser, driver, server, seen, cert)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.__name__.removeprefix("scenario_") for s in SCENARIOS])
async def test_scenario(rig: Rig, scenario: Scenario) -> None:
    await scenario(rig)
