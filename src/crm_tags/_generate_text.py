"""Text pools for the synthetic landing zone (names, places, products, free-text noise).

Kept apart from `generate.py` so the generator reads as logic, not as word lists. Every pool is
a tuple (fixed order), because the generator indexes pools with seeded random integers.
"""

from __future__ import annotations

# (hanzi, pinyin); roughly in order of frequency, the generator weights them Zipf-like.
SURNAMES: tuple[tuple[str, str], ...] = (
    ("王", "wang"), ("李", "li"), ("张", "zhang"), ("刘", "liu"), ("陈", "chen"), ("杨", "yang"),
    ("黄", "huang"), ("赵", "zhao"), ("吴", "wu"), ("周", "zhou"), ("徐", "xu"), ("孙", "sun"),
    ("马", "ma"), ("朱", "zhu"), ("胡", "hu"), ("郭", "guo"), ("何", "he"), ("高", "gao"),
    ("林", "lin"), ("罗", "luo"), ("郑", "zheng"), ("梁", "liang"), ("谢", "xie"), ("宋", "song"),
    ("唐", "tang"), ("许", "xu"), ("韩", "han"), ("冯", "feng"), ("邓", "deng"), ("曹", "cao"),
    ("彭", "peng"), ("曾", "zeng"), ("肖", "xiao"), ("田", "tian"), ("董", "dong"), ("袁", "yuan"),
    ("潘", "pan"), ("于", "yu"), ("蒋", "jiang"), ("蔡", "cai"), ("余", "yu"), ("杜", "du"),
    ("叶", "ye"), ("程", "cheng"), ("苏", "su"), ("魏", "wei"), ("吕", "lv"), ("丁", "ding"),
    ("任", "ren"), ("沈", "shen"), ("姚", "yao"), ("卢", "lu"), ("姜", "jiang"), ("崔", "cui"),
    ("钟", "zhong"), ("谭", "tan"), ("陆", "lu"), ("汪", "wang"), ("范", "fan"), ("金", "jin"),
    ("欧阳", "ouyang"), ("司马", "sima"),
)

GIVEN_CHARS: tuple[tuple[str, str], ...] = (
    ("伟", "wei"), ("芳", "fang"), ("娜", "na"), ("敏", "min"), ("静", "jing"), ("丽", "li"),
    ("强", "qiang"), ("磊", "lei"), ("军", "jun"), ("洋", "yang"), ("勇", "yong"), ("艳", "yan"),
    ("杰", "jie"), ("娟", "juan"), ("涛", "tao"), ("明", "ming"), ("超", "chao"), ("秀", "xiu"),
    ("霞", "xia"), ("平", "ping"), ("刚", "gang"), ("英", "ying"), ("华", "hua"), ("玉", "yu"),
    ("萍", "ping"), ("红", "hong"), ("鹏", "peng"), ("辉", "hui"), ("建", "jian"), ("国", "guo"),
    ("文", "wen"), ("斌", "bin"), ("宇", "yu"), ("浩", "hao"), ("凯", "kai"), ("健", "jian"),
    ("俊", "jun"), ("帆", "fan"), ("晨", "chen"), ("欣", "xin"), ("怡", "yi"), ("婷", "ting"),
    ("雪", "xue"), ("琳", "lin"), ("晓", "xiao"), ("子", "zi"), ("梓", "zi"), ("涵", "han"),
    ("轩", "xuan"), ("博", "bo"), ("思", "si"), ("佳", "jia"), ("嘉", "jia"), ("志", "zhi"),
    ("海", "hai"), ("峰", "feng"), ("亮", "liang"), ("诗", "shi"), ("雨", "yu"), ("一", "yi"),
)

# Chinese professionals often use an English first name with their pinyin surname ("Kevin Zhang").
ENGLISH_FIRST_NAMES: tuple[str, ...] = (
    "David", "Michael", "Kevin", "Jason", "Eric", "Tony", "Jack", "Leo", "Peter", "Frank",
    "Vincent", "Alex", "Grace", "Linda", "Amy", "Cindy", "Helen", "Vivian", "Lucy", "Emma",
    "Sophie", "Iris", "Cherry", "Sunny",
)

# Two-character brand words for company names, with the pinyin used in their web domains.
BRANDS: tuple[tuple[str, str], ...] = (
    ("华信", "huaxin"), ("东方", "dongfang"), ("金桥", "jinqiao"), ("远航", "yuanhang"),
    ("恒通", "hengtong"), ("宏达", "hongda"), ("天诚", "tiancheng"), ("瑞丰", "ruifeng"),
    ("中联", "zhonglian"), ("博远", "boyuan"), ("鼎盛", "dingsheng"), ("汇智", "huizhi"),
    ("安泰", "antai"), ("永信", "yongxin"), ("海纳", "haina"), ("盛世", "shengshi"),
    ("嘉禾", "jiahe"), ("星河", "xinghe"), ("云帆", "yunfan"), ("启明", "qiming"),
    ("卓越", "zhuoyue"), ("兴业", "xingye"), ("新元", "xinyuan"), ("同创", "tongchuang"),
    ("锦程", "jincheng"), ("万通", "wantong"), ("九州", "jiuzhou"), ("融达", "rongda"),
    ("泰和", "taihe"), ("蓝海", "lanhai"), ("银河", "yinhe"), ("明德", "mingde"),
)

# Industry word in a company name, per controlled industry code: (chinese, english).
COMPANY_WORDS: dict[str, tuple[tuple[str, str], ...]] = {
    "manufacturing": (("机械", "Machinery"), ("精密制造", "Precision Manufacturing"),
                      ("电子", "Electronics"), ("新材料", "Materials")),
    "retail": (("商贸", "Trading"), ("百货", "Department Store"), ("电子商务", "E-commerce")),
    "it_services": (("科技", "Technology"), ("信息技术", "Information Technology"),
                    ("软件", "Software"), ("网络", "Networks")),
    "finance": (("投资", "Investment"), ("金融服务", "Financial Services"),
                ("资产管理", "Asset Management")),
    "healthcare": (("医疗器械", "Medical Devices"), ("医药", "Pharmaceutical"),
                   ("健康科技", "Health Tech")),
    "education": (("教育科技", "EdTech"), ("培训", "Training")),
    "logistics": (("物流", "Logistics"), ("供应链", "Supply Chain"), ("运输", "Transport")),
    "other": (("咨询", "Consulting"), ("置业", "Real Estate"), ("文化传媒", "Media"),
              ("餐饮管理", "Catering")),
}
COMPANY_SUFFIXES_ZH: tuple[str, ...] = ("有限公司", "股份有限公司", "集团有限公司", "有限责任公司")
COMPANY_SUFFIXES_EN: tuple[str, ...] = ("Co., Ltd.", "Group", "Inc.", "Holdings Ltd.")
COMPANY_TLDS: tuple[str, ...] = (".com", ".com.cn", ".cn", ".net")
PERSONAL_EMAIL_DOMAINS: tuple[str, ...] = (
    "qq.com", "163.com", "126.com", "sina.com", "gmail.com", "outlook.com", "foxmail.com",
)

# Industry free text that maps to nothing in industry_mapping.csv: tagged `other`.
UNMAPPED_INDUSTRY: tuple[str, ...] = (
    "房地产", "Real Estate", "农业", "agriculture", "餐饮", "咨询服务", "consulting",
    "文化传媒", "政府机构", "能源", "energy", "建筑", "个人", "individual",
)

# Province weights (share of customers) and a few cities, keyed by the seed's short name.
PROVINCE_WEIGHTS: dict[str, float] = {
    "广东": 12, "江苏": 10, "浙江": 9, "山东": 7, "上海": 7, "北京": 7, "河南": 5, "四川": 5,
    "湖北": 4.5, "福建": 4.5, "湖南": 4, "安徽": 3.5, "河北": 3.5, "陕西": 2.5, "重庆": 2.5,
    "辽宁": 2.5, "天津": 2, "江西": 2, "云南": 2, "广西": 2, "山西": 1.5, "贵州": 1.5,
    "黑龙江": 1.5, "内蒙古": 1, "新疆": 1, "吉林": 1, "甘肃": 0.8, "海南": 0.7, "宁夏": 0.4,
    "青海": 0.3, "西藏": 0.2,
}
CITIES: dict[str, tuple[str, ...]] = {
    "上海": ("上海", "浦东新区", "闵行区"), "江苏": ("南京", "苏州", "无锡", "常州"),
    "浙江": ("杭州", "宁波", "温州", "嘉兴"), "安徽": ("合肥", "芜湖", "蚌埠"),
    "福建": ("福州", "厦门", "泉州"), "江西": ("南昌", "赣州", "九江"),
    "山东": ("济南", "青岛", "烟台", "潍坊"), "广东": ("广州", "深圳", "东莞", "佛山"),
    "广西": ("南宁", "柳州", "桂林"), "海南": ("海口", "三亚"), "北京": ("北京", "朝阳区", "海淀区"),
    "天津": ("天津", "滨海新区"), "河北": ("石家庄", "唐山", "保定"), "山西": ("太原", "大同"),
    "内蒙古": ("呼和浩特", "包头"), "河南": ("郑州", "洛阳", "开封"), "湖北": ("武汉", "宜昌", "襄阳"),
    "湖南": ("长沙", "株洲", "岳阳"), "重庆": ("重庆", "渝北区"), "四川": ("成都", "绵阳", "宜宾"),
    "贵州": ("贵阳", "遵义"), "云南": ("昆明", "大理", "曲靖"), "西藏": ("拉萨",),
    "陕西": ("西安", "宝鸡", "咸阳"), "甘肃": ("兰州", "天水"), "青海": ("西宁",),
    "宁夏": ("银川",), "新疆": ("乌鲁木齐", "克拉玛依"), "辽宁": ("沈阳", "大连", "鞍山"),
    "吉林": ("长春", "吉林"), "黑龙江": ("哈尔滨", "大庆", "齐齐哈尔"),
}
# Outside the 31 mainland provinces of the seed: no region tag.
UNKNOWN_PROVINCES: tuple[str, ...] = ("香港", "香港特别行政区", "澳门", "台湾")
UNKNOWN_PROVINCE_CITIES: tuple[str, ...] = ("香港", "九龙", "澳门", "台北")

JOB_TITLES: dict[str, tuple[str, ...]] = {
    "decision_maker": ("总经理", "CEO", "董事长", "总裁", "副总经理", "General Manager", "CFO"),
    "influencer": ("技术总监", "IT经理", "财务总监", "项目经理", "Engineering Manager", "顾问"),
    "user": ("工程师", "运营专员", "行政专员", "Analyst", "设计师", "客服主管"),
    "purchaser": ("采购经理", "采购专员", "Procurement Manager", "Buyer", "供应链经理"),
    "b2c": ("自由职业", "学生", "教师", "工程师", "个体经营", "医生"),
}
# Decision-role text that maps to nothing in decision_role_mapping.csv: no tag.
UNMAPPED_DECISION_ROLES: tuple[str, ...] = ("champion", "gatekeeper", "技术顾问", "财务", "其他")

MANUAL_TAG_OPERATORS: tuple[str, ...] = (
    "张伟(华东销售部)", "李娜", "wang.fang", "sales_admin", "crm_import", "Kevin Liu",
    "赵敏(KA团队)", "陈静", "ops-bot",
)

# Products: category code -> (product count, list-price median CNY, lognormal sigma,
# sub-categories, product nouns). The counts add up to 200.
PRODUCT_CATEGORIES: dict[str, tuple[int, float, float, tuple[str, ...], tuple[str, ...]]] = {
    "electronics": (28, 1500, 0.9, ("手机", "笔记本电脑", "耳机", "显示器", "平板"),
                    ("智能手机", "轻薄本", "降噪耳机", "27英寸显示器", "平板电脑")),
    "office_supplies": (26, 40, 0.8, ("纸张", "文具", "打印耗材", "收纳"),
                        ("A4复印纸", "中性笔套装", "硒鼓", "文件收纳盒")),
    "furniture": (16, 1200, 0.7, ("办公椅", "办公桌", "文件柜", "沙发"),
                  ("人体工学椅", "升降办公桌", "钢制文件柜", "布艺沙发")),
    "apparel": (26, 250, 0.6, ("男装", "女装", "工装", "鞋靴"),
                ("纯棉T恤", "羽绒服", "工作服", "运动鞋")),
    "food_beverage": (22, 60, 0.6, ("茶叶", "零食", "咖啡", "酒水"),
                      ("西湖龙井", "坚果礼盒", "挂耳咖啡", "精酿啤酒")),
    "beauty": (18, 180, 0.6, ("护肤", "彩妆", "个护"), ("精华液", "口红", "电动牙刷")),
    "home_appliances": (16, 1500, 0.8, ("厨房电器", "清洁电器", "空调"),
                        ("电饭煲", "扫地机器人", "变频空调")),
    "industrial_equipment": (14, 25000, 0.9, ("机床", "泵阀", "检测设备"),
                             ("数控车床", "离心泵", "三坐标测量仪")),
    "software": (12, 5000, 1.0, ("SaaS订阅", "授权许可", "实施服务"),
                 ("CRM年度订阅", "正版授权", "实施服务包")),
    "books": (12, 50, 0.4, ("管理", "技术", "少儿"), ("管理学经典", "编程指南", "儿童绘本")),
    "other": (10, 150, 0.8, ("礼品卡", "宠物用品", "汽车用品"), ("电子礼品卡", "猫粮", "车载支架")),
}
PRODUCT_BRANDS: tuple[str, ...] = (
    "华帆", "Nova", "优品", "Apex", "云杉", "Zenith", "青木", "Orion", "朗境", "Vista",
)
# The category texts of the generator's `other` products: "其他" (the mapping's `other`) and
# the shop's own categories that seeds/category_mapping.csv does not list, each of which stays
# its own category (gift_cards, 礼品卡, ...), as in a real shop.
OTHER_CATEGORIES: tuple[str, ...] = ("其他", "gift cards", "礼品卡", "宠物用品", "汽车用品")

# Gibberish for --dirty: clearly unparseable text (placeholders, typos, mojibake).
GIBBERISH: tuple[str, ...] = ("???", "#N/A", "asdfgh", "—", "#REF!", "12345", "xx", "[object Object]")

# Unknown enum values for --dirty, per column; none of them is valid after trim + lower-case.
UNKNOWN_ENUMS: dict[str, tuple[str, ...]] = {
    "customer_type": ("B2G", "unknown", "test", "C2C"),
    "status": ("pending", "on_hold", "unknown", "partially_refunded"),
    "sales_channel": ("tiktok_live", "unknown", "wholesale", "mini_program"),
    "ticket_channel": ("fax", "letter", "unknown", "weibo"),
    "ticket_type": ("praise", "spam", "unknown", "feature_request"),
    "campaign_event_type": ("bounced", "forwarded", "spam_report", "unknown"),
    "web_event_type": ("scroll", "video_play", "checkout_start", "unknown"),
    "campaign_channel": ("tiktok", "outdoor", "unknown"),
    "manual_action": ("toggle", "archive", "unknown"),
    "manual_tag_code": ("vip_gold", "test_tag", "churn_watch"),
}


def mojibake(text: str) -> str:
    """UTF-8 bytes read as Latin-1: the classic garbling of Chinese text by a bad export."""
    return text.encode("utf-8").decode("latin-1")
