"""Built-in training text for the test tokenizers: customer-service dialogue in English and Chinese.

Both languages are here so that Chinese characters become real tokens (not only raw bytes) and tests of
Chinese data exercise the same paths as English data.
"""

ENGLISH = [
    "Hello, thank you for contacting customer support. How can I help you today?",
    "I ordered a pair of shoes last week and they have not arrived yet.",
    "Could you please give me your order number so I can check the status?",
    "My order number is 20240315-8812 and the tracking page shows no updates.",
    "I am sorry for the delay. Your package left our warehouse on Monday.",
    "The courier expects to deliver it within three business days.",
    "I would like to return this jacket because the size is too small.",
    "You can return any item within 30 days of delivery for a full refund.",
    "Please print the return label and drop the parcel at the nearest post office.",
    "When will I receive my refund?",
    "Refunds are processed within five to seven business days after we receive the item.",
    "I forgot my password and cannot log in to my account.",
    "Click on 'Forgot password' and we will send a reset link to your email address.",
    "I did not receive the verification code. Can you send it again?",
    "The payment failed twice, but my card was charged. What should I do?",
    "Don't worry, the pending charge will be released by your bank automatically.",
    "Can I change the delivery address after placing the order?",
    "Yes, as long as the order has not been shipped, you can edit the address.",
    "Is this product available in blue?",
    "It's currently out of stock, but we expect new inventory next month.",
    "I'd like to cancel my subscription, please.",
    "We're sad to see you go. Your subscription will stay active until the end of the billing period.",
    "The item arrived damaged. The screen is cracked.",
    "We apologize for the inconvenience. We'll ship a replacement free of charge.",
    "Do you offer international shipping to Canada and the United Kingdom?",
    "Shipping costs $12.99 for orders under $50; orders over $50 ship for free.",
    "Thank you for your patience. Is there anything else I can help you with?",
    "No, that's all. Have a nice day!",
    "You're welcome. Have a great day and thank you for shopping with us.",
    "What are your customer service hours?",
    "Our team is available from 9:00 to 18:00, Monday through Friday.",
    "I want to speak with a manager about this complaint.",
    "I understand your frustration. Let me escalate this issue to my supervisor.",
    "Please rate your experience with our support team from 1 to 5.",
    "The invoice shows the wrong company name. Could you issue a new one?",
    "We have updated the invoice and sent it to your registered email.",
    "How do I apply a discount code at checkout?",
    "Enter the code in the 'Promo code' field and press Apply before you pay.",
    "The app keeps crashing when I open the order history page.",
    "Please update the app to the latest version and restart your phone.",
]

CHINESE = [
    "您好，感谢您联系客服中心，请问有什么可以帮您？",
    "我上周买了一双鞋，到现在还没有收到。",
    "请提供一下您的订单号，我帮您查询物流状态。",
    "我的订单号是20240315-8812，物流页面一直没有更新。",
    "非常抱歉给您带来不便，您的包裹已于周一从仓库发出。",
    "快递预计在三个工作日内送达。",
    "我想退货，因为这件外套的尺码太小了。",
    "收到商品后三十天内可以申请退货，并获得全额退款。",
    "请打印退货标签，把包裹送到最近的邮局。",
    "我什么时候能收到退款？",
    "我们收到商品后，退款会在五到七个工作日内处理完成。",
    "我忘记了密码，无法登录我的账户。",
    "请点击“忘记密码”，我们会把重置链接发送到您的邮箱。",
    "我没有收到验证码，可以再发一次吗？",
    "付款失败了两次，但是银行卡被扣款了，我该怎么办？",
    "请不用担心，这笔预授权金额会由银行自动退回。",
    "下单以后还能修改收货地址吗？",
    "可以的，只要订单还没有发货，您就可以修改地址。",
    "这个商品有蓝色的吗？",
    "目前暂时缺货，预计下个月会有新的库存。",
    "我想取消我的会员订阅。",
    "很遗憾您要离开，您的订阅会保持有效直到本计费周期结束。",
    "收到的商品是坏的，屏幕裂开了。",
    "非常抱歉，我们会免费为您补发一个新的商品。",
    "你们支持寄送到加拿大和英国吗？",
    "订单金额不满五十元需要支付运费，满五十元免运费。",
    "感谢您的耐心等待，请问还有其他问题吗？",
    "没有了，谢谢，祝您生活愉快！",
    "不客气，祝您购物愉快，感谢您的支持。",
    "你们的客服工作时间是什么时候？",
    "我们的客服时间是周一到周五，上午九点到下午六点。",
    "我要投诉，请让你们的经理来处理。",
    "理解您的心情，我马上把问题反馈给主管。",
    "请为本次服务打分，一分到五分。",
    "发票上的公司名称写错了，可以重新开一张吗？",
    "我们已经更新了发票，并发送到您注册的邮箱。",
    "结账的时候怎么使用优惠码？",
    "在“优惠码”一栏输入代码，付款前点击使用即可。",
    "我打开订单记录页面时，应用总是闪退。",
    "请把应用更新到最新版本，然后重启手机。",
    "您的问题已经解决了吗？如果还有疑问，欢迎随时联系我们。",
    "好的，我明白了，谢谢你的帮助。",
]

# Short tool-calling snippets, so that JSON punctuation in tool turns also merges into tokens.
TOOL_TEXT = [
    '<tool_call>\n{"name": "get_order_status", "arguments": {"order_id": "20240315-8812"}}\n</tool_call>',
    '<tool_response>\n{"status": "shipped", "eta_days": 3}\n</tool_response>',
    '{"name": "create_refund", "arguments": {"order_id": "A1001", "reason": "damaged"}}',
]


def sentences() -> list[str]:
    return ENGLISH + CHINESE + TOOL_TEXT


def chinese_characters() -> list[str]:
    """Every non-ASCII character of the Chinese sentences (Han characters and full-width punctuation), once."""
    return sorted({char for sentence in CHINESE for char in sentence if not char.isascii()})
