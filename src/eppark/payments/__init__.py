"""Payments: providers (sandbox, WeChat Pay, Alipay), the QR pages, code payments, the books."""
