"""Every fault switch of the demo mall is observable, deterministic, and off by default."""

from __future__ import annotations

import http.client
import io
import json
import urllib.error
import urllib.request
from urllib.parse import urlsplit

import pytest
from PIL import Image
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from demo.faults import FAULTS, FaultPlan, FaultSpecError
from demo.mall import MallSettings, run_mall


def request(url: str, cookie: str | None = None):
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    conn.request(
        "GET",
        parts.path + (f"?{parts.query}" if parts.query else ""),
        headers={"Cookie": cookie} if cookie else {},
    )
    response = conn.getresponse()
    return response.status, dict(response.getheaders()), response.read()


def faulty_mall(faults: str, products: int = 40, shops=("classic", "spa", "scroll", "menu")):
    return run_mall(MallSettings(seed=5, products=products, faults=faults, shops=shops))


@pytest.mark.parametrize(
    ("fault", "status"), [("http500", 500), ("http503", 503), ("http429", 429)]
)
def test_error_statuses(fault, status):
    with faulty_mall(f"{fault}=1", shops=("classic",)) as mall:
        code, headers, _ = request(mall.base_urls["classic"] + "/products?page=1")
    assert code == status and headers["X-Demo-Fault"] == fault
    assert ("Retry-After" in headers) == (status in (429, 503))


def test_slow_responses_are_marked_and_still_complete():
    with faulty_mall("slow=1", shops=("classic",)) as mall:
        code, headers, body = request(mall.base_urls["classic"] + "/products?page=1")
    assert code == 200 and headers["X-Demo-Fault"] == "slow" and b"</html>" in body


def test_dropped_connections_send_nothing():
    with (
        faulty_mall("drop=1", shops=("classic",)) as mall,
        pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)),
    ):
        request(mall.base_urls["classic"] + "/products?page=1")


def test_truncated_bodies_end_early():
    with (
        faulty_mall("truncate=1", shops=("classic",)) as mall,
        pytest.raises(http.client.IncompleteRead),
    ):
        request(mall.base_urls["classic"] + "/products?page=1")


def test_request_faults_are_deterministic_and_a_retry_can_succeed():
    outcomes = []
    for _ in range(2):
        with faulty_mall("http500=0.5", shops=("classic",)) as mall:
            base = mall.base_urls["classic"]
            outcomes.append([request(f"{base}/products?page={n % 2 + 1}")[0] for n in range(20)])
    assert outcomes[0] == outcomes[1]
    assert {200, 500} == set(outcomes[0])


def test_malformed_and_missing_prices_follow_the_answer_key():
    with faulty_mall("bad_price=0.3,missing_price=0.3", shops=("classic",)) as mall:
        key = mall.answer_key()["shops"]["classic"]["offers"]
        pages = b"".join(
            request(f"{mall.base_urls['classic']}/products?page={n}")[2]
            for n in range(1, mall.servers["classic"].shop.page_count + 1)
        )
        details = {o["sku"]: request(o["url"])[2].decode() for o in key}
    bad = [o for o in key if "bad_price" in o["faults"]]
    missing = [o for o in key if "missing_price" in o["faults"]]
    assert bad and missing and not {o["sku"] for o in bad} & {o["sku"] for o in missing}
    # on the cards (the listing's JSON-LD shows the same text in place of the price)
    assert pages.count('<span class="amount">가격문의'.encode()) == len(bad)
    assert pages.count('"price": "가격문의"'.encode()) == len(bad)
    for offer in missing:
        assert 'class="price"' not in details[offer["sku"]]
    for offer in key:
        if not offer["faults"]:
            assert f"{offer['price']:,}원" in details[offer["sku"]]


def test_corrupt_images_and_decompression_bombs():
    with faulty_mall("corrupt_image=0.5,bomb_image=0.5", shops=("spa",)) as mall:
        key = mall.answer_key()["shops"]["spa"]["offers"]
        bodies = {o["sku"]: (o["faults"], request(o["image_url"])[2]) for o in key}
    kinds = set()
    for faults, body in bodies.values():
        if "bomb_image" in faults:
            with pytest.raises(Image.DecompressionBombError):
                Image.open(io.BytesIO(body))  # Pillow refuses it from the header alone
            kinds.add("bomb")
        elif "corrupt_image" in faults:
            with pytest.raises(OSError):
                Image.open(io.BytesIO(body)).load()
            kinds.add("corrupt")
    assert kinds == {"bomb", "corrupt"}


@pytest.mark.browser
def test_a_javascript_error_does_not_stop_the_page(browser):
    with faulty_mall("js_error=1", shops=("spa",)) as mall:
        _, _, body = request(mall.base_urls["spa"] + "/")
        assert b"demo mall fault: js_error" in body
        browser.get(mall.base_urls["spa"] + "/")
        WebDriverWait(browser, 10).until(lambda d: d.find_elements(By.CSS_SELECTOR, "article.card"))


def test_a_hanging_page_carries_a_script_that_never_ends():
    with faulty_mall("hang=1", shops=("classic",)) as mall:
        _, _, body = request(mall.base_urls["classic"] + "/")
        _, _, photo = request(mall.base_urls["classic"] + "/robots.txt")
    assert b"for (;;) {}" in body and b"for (;;)" not in photo  # HTML pages only


def test_endless_scroll_never_ends():
    with faulty_mall("endless_scroll=1", shops=("scroll",)) as mall:
        far = json.loads(request(mall.base_urls["scroll"] + "/api/feed?offset=100000")[2])
    assert far["items"] and far["done"] is False


def test_the_consent_modal_reappears_after_consent():
    with faulty_mall("modal_reappears=1", shops=("scroll",)) as mall:
        offer = mall.answer_key()["shops"]["scroll"]["offers"][0]
        body = request(offer["url"], cookie="consent=yes")[2]
    assert b"consent-overlay" in body


def test_without_faults_consent_is_remembered_and_nothing_fails(mall):
    offer = mall.answer_key()["shops"]["scroll"]["offers"][0]
    assert b"consent-overlay" not in request(offer["url"], cookie="consent=yes")[2]
    assert b"consent-overlay" in request(offer["url"])[2]
    for shop in mall.answer_key()["shops"].values():
        assert all(o["faults"] == [] for o in shop["offers"])


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("explode=0.1", "unknown fault 'explode'"),
        ("http500=2", "outside 0..1"),
        ("slow=fast", "not a number"),
    ],
)
def test_bad_fault_specs_are_named(spec, message):
    with pytest.raises(FaultSpecError, match=message):
        FaultPlan.parse(spec)


def test_all_switches_every_fault_on():
    plan = FaultPlan.parse("all=0.2")
    assert set(plan.rates) == set(FAULTS) and str(plan).startswith("bad_price=0.2")


def test_answer_key_is_not_served_even_with_faults():
    with faulty_mall("all=0.1", shops=("classic",)) as mall:
        try:
            urllib.request.urlopen(mall.base_urls["classic"] + "/answer-key.json", timeout=30)
        except (urllib.error.HTTPError, http.client.HTTPException, OSError) as exc:
            assert getattr(exc, "code", 404) in (404, 429, 500, 503)
        else:
            pytest.fail("the answer key must not be served")
