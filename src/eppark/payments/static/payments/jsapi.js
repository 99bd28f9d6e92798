/* Inside WeChat: open WeChat Pay (JSAPI) with the signed parameters, then the result page. */
(function () {
  "use strict";
  var params = JSON.parse(document.getElementById("jsapi-params").textContent);
  var result = document.getElementById("jsapi-result").getAttribute("href");
  function pay() {
    window.WeixinJSBridge.invoke("getBrandWCPayRequest", params, function () {
      window.location.replace(result); // paid, cancelled or failed: the result page asks the provider
    });
  }
  if (window.WeixinJSBridge) {
    pay();
  } else {
    document.addEventListener("WeixinJSBridgeReady", pay, false);
  }
})();
