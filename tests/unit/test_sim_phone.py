"""The simulated drivers' phone reads pages by their visible labels, as a person does."""

from __future__ import annotations

import random

from eppark.domain.billing import payment_code_channel
from eppark.sim.drivers import payment_code
from eppark.sim.phone import Page

ENTRY = """<!doctype html><html><head><title>无牌车进场</title>
<style>.x{color:red}</style><script>var t = "确认进场";</script></head><body>
<h1>彩科 入口1</h1>
<form method="post" action="/q/abc/enter">
  <input type="hidden" name="csrfmiddlewaretoken" value="tok">
  <label for="id_phone">手机号</label> <input type="tel" id="id_phone" name="phone">
  <label><input type="checkbox" name="agree" checked> 同意</label>
  <button type="submit" class="big">确认进场</button>
</form></body></html>"""

RENEW = """<html><body><p>应付 ¥300.00</p>
<form method="post">
  <label><input type="radio" name="months" value="1"> 1个月 ¥300.00</label>
  <label><input type="radio" name="months" value="3" checked> 3个月 ¥850.00</label>
  <select name="channel"><option value="wechat">微信</option>
    <option value="alipay" selected>支付宝</option></select>
  <input type="submit" name="go" value="立即支付">
</form>
<a href="/lot/caike/">车场</a><meta http-equiv="refresh" content="2; url=/q/abc/result">
</body></html>"""


def test_a_field_is_found_by_its_label_and_the_button_by_its_words() -> None:
    page = Page.parse("http://127.0.0.1:8000/q/abc", 200, ENTRY)
    found = page.form_with_button("确认进场")
    assert found is not None
    form, button = found
    assert form.action == "http://127.0.0.1:8000/q/abc/enter"
    assert form.method == "post"
    field = form.field_labelled("手机号")
    assert field is not None
    assert field.name == "phone"
    data = form.data(button, random.Random(1))
    assert data == {"csrfmiddlewaretoken": "tok", "phone": "", "agree": "on"}
    assert "var t" not in page.text  # scripts are not what a person reads
    assert page.says("彩科 入口1")


def test_choices_radios_selects_and_refresh() -> None:
    page = Page.parse("http://h/q/abc", 200, RENEW)
    found = page.form_with_button("立即支付")
    assert found is not None
    form, button = found
    assert form.action == "http://h/q/abc"
    assert form.data(button, random.Random(1)) == {
        "months": "3",
        "channel": "alipay",
        "go": "立即支付",
    }
    assert page.link("车场") == "http://h/lot/caike/"
    assert page.refresh_url() == "http://h/q/abc/result"
    assert page.says("¥300.00")


def test_payment_codes_are_routed_by_their_prefix_and_end_as_asked() -> None:
    rng = random.Random(3)
    for _ in range(50):
        wechat = payment_code(rng, "wechat", "2")
        alipay = payment_code(rng, "alipay", "1")
        assert payment_code_channel(wechat) == "wechat"
        assert wechat.endswith("2")
        assert payment_code_channel(alipay) == "alipay"
        assert alipay.endswith("1")
