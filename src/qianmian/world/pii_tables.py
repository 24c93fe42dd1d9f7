"""The data tables behind the simulated bank's personal identifiers.

Given-name characters by gender, district codes (行政区划代码) of the cities the bank serves,
mobile operator prefixes, UnionPay card BINs, and the syllables and domains of email addresses.
The generators that draw from them are in :mod:`qianmian.world.pii`; the surnames, which masking
needs too, are in :mod:`qianmian.data.pii_rules`.

>>> REGIONS[0], len(MOBILE_PREFIXES) == len(set(MOBILE_PREFIXES))
(Region(code='110101', city='北京', district='东城区'), True)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "DEFAULT_CARD_BINS",
    "EMAIL_DOMAINS",
    "EMAIL_DOMAIN_SHARES",
    "EMAIL_SYLLABLES",
    "FEMALE_GIVEN_CHARS",
    "MALE_GIVEN_CHARS",
    "MOBILE_PREFIXES",
    "NEUTRAL_GIVEN_CHARS",
    "REGIONS",
    "Region",
]


def _words(text: str) -> list[str]:
    """The whitespace-separated words of a compact data table."""
    return text.split()


# Given-name characters, the more common first. None of them is a function word or verb that
# commonly follows a name in a sentence (来, 反, 的 ...), which keeps name detection in free text
# well defined.
MALE_GIVEN_CHARS = (
    "伟强磊军勇杰涛斌超明刚平辉鹏华飞鑫波宇浩凯健俊帆帅旭宁龙林洋峰建国志东海亮永春光兵晨"
    "坤博哲睿轩泽昊然子航铭楷瑞翔彬锋毅胜力庆德松山仁义礼智忠孝安福贵荣祥财宏广振兴"
    "玉天嘉伦翰卓恒源锐琦彦晖骏驰鸿宸逸辰朗钧凡青阳舟远威武豪杭骁岩冬江栋梁桐柏树森"
    "炎焱鹤鹰虎彪川岳崇嵩昌晋宾柱根旺兆钢铁雄坚朋邦承乾培基奇勋韬诚谦裕瀚琛煜烨炜灿晟"
    "皓衡霖霆震庭廷楠桦耀斐"
)
FEMALE_GIVEN_CHARS = (
    "芳娜敏静丽艳娟霞秀玲桂英燕红萍雪琳晶婷慧颖倩洁琴兰梅莉欣怡悦佳雯蕾薇菲璐瑶琪萱涵梦"
    "诗雨晴露岚媛妍婉娇莹翠凤美丹蓉菊巧珍爱妮媚姗嫣娅婧婕妙妤姝姿婵嫦娴淑贞彩霏雅韵馨"
    "芸芷茜茹荷莎莲萌蕊薰蓓菁苗苹蔓蓝香瑾瑜璇琼瑛琬璟珊珠清澜湘沁滢漪凌冰霜影黛晓佩依"
    "伊娥宛宜容芬芝苒荔蕙蕴虹蝶珂琰瑗璧雁靖韶颜柔柳桃梓楚歆沐洛津涓淼溪潇灵玥珏玫秋筱"
    "紫絮羽翎舒艺芊芮茵莺菡"
)
NEUTRAL_GIVEN_CHARS = "文嘉子思安宁晨雨心欣乐天若泽锦语"


@dataclass(frozen=True, slots=True)
class Region:
    """A six-digit administrative code (行政区划代码) of a district and its city."""

    code: str
    city: str
    district: str


_REGION_TABLE = """
北京 110101东城区 110102西城区 110105朝阳区 110106丰台区 110108海淀区 110114昌平区
上海 310101黄浦区 310104徐汇区 310105长宁区 310106静安区 310110杨浦区 310112闵行区 310115浦东新区
广州 440103荔湾区 440104越秀区 440105海珠区 440106天河区 440111白云区
深圳 440303罗湖区 440304福田区 440305南山区 440306宝安区 440307龙岗区
成都 510104锦江区 510105青羊区 510106金牛区 510107武侯区 510108成华区
重庆 500103渝中区 500105江北区 500112渝北区
杭州 330102上城区 330105拱墅区 330106西湖区 330108滨江区 330110余杭区
武汉 420102江岸区 420103江汉区 420106武昌区 420111洪山区
苏州 320505虎丘区 320506吴中区 320508姑苏区
西安 610102新城区 610103碑林区 610113雁塔区
南京 320102玄武区 320104秦淮区 320105建邺区 320106鼓楼区
长沙 430102芙蓉区 430104岳麓区 | 天津 120101和平区 120104南开区
郑州 410102中原区 410105金水区 | 东莞 441900东莞市
无锡 320213梁溪区 320214新吴区 | 宁波 330203海曙区 330212鄞州区
青岛 370202市南区 370203市北区 370212崂山区
合肥 340102瑶海区 340104蜀山区 | 佛山 440604禅城区 440606顺德区
沈阳 210102和平区 210103沈河区 | 昆明 530102五华区 530103盘龙区
济南 370102历下区 370103市中区 | 厦门 350203思明区 350206湖里区
福州 350102鼓楼区 350104仓山区 | 温州 330302鹿城区
哈尔滨 230102道里区 230103南岗区 | 石家庄 130102长安区 130104桥西区
大连 210202中山区 210204沙河口区 | 南宁 450102兴宁区 450103青秀区
泉州 350502鲤城区 | 贵阳 520102南明区 520103云岩区
长春 220102南关区 220104朝阳区 | 南昌 360102东湖区 360111青山湖区
太原 140105小店区 140106迎泽区 | 常州 320402天宁区 320411新北区
珠海 440402香洲区 | 兰州 620102城关区 | 扬州 321002广陵区
洛阳 410302老城区 | 汕头 440507龙湖区 | 芜湖 340202镜湖区
襄阳 420602襄城区 | 赣州 360702章贡区 | 桂林 450302秀峰区
宜昌 420502西陵区 | 遵义 520302红花岗区 | 曲靖 530302麒麟区
商丘 411402梁园区 | 周口 411602川汇区 | 信阳 411502浉河区
南阳 411302宛城区 | 邵阳 430502双清区 | 黄冈 421102黄州区
六安 341502金安区 | 宿迁 321302宿城区 | 荆州 421002沙市区
天水 620502秦州区 | 丽水 331102莲都区 | 海口 460106龙华区
乌鲁木齐 650102天山区 | 呼和浩特 150102新城区 | 银川 640104兴庆区
西宁 630102城东区 | 拉萨 540102城关区 | 徐州 320302鼓楼区
烟台 370602芝罘区 | 绍兴 330602越城区 | 嘉兴 330402南湖区
金华 330702婺城区 | 南通 320602崇川区 | 惠州 441302惠城区
中山 442000中山市 | 绵阳 510703涪城区 | 唐山 130202路南区
保定 130602竞秀区
"""
REGIONS: tuple[Region, ...] = tuple(
    Region(code, entry.split()[0], district)
    for entry in _REGION_TABLE.replace("\n", "|").split("|")
    if entry.strip()
    for code, district in re.findall(r"(\d{6})(\S+)", entry)
)

#: Mobile operator prefixes (China Mobile, Unicom, Telecom, virtual operators).
MOBILE_PREFIXES: tuple[str, ...] = tuple(
    _words(
        "130 131 132 133 134 135 136 137 138 139 145 147 149 150 151 152 153 155 156 157 158 "
        "159 166 170 171 173 175 176 177 178 180 181 182 183 184 185 186 187 188 189 191 198 199"
    )
)

#: Real-looking UnionPay credit card BINs (issuer identification numbers).
DEFAULT_CARD_BINS: tuple[str, ...] = tuple(
    _words(
        "622588 622575 622576 622155 622836 622689 622690 622280 "
        "625802 625803 625965 625966 625906 628288 628258 625958"
    )
)

#: Pinyin syllables that make the given-name part of an email's local part.
EMAIL_SYLLABLES: tuple[str, ...] = tuple(
    _words(
        "wei jie ming hua jun yan li na fang min jing lei qiang yang tao bin chao hui xin yu hao "
        "kai jian ling ting ying xue qian jia yi han yue chen rui zhe xuan ze hong lin feng bo "
        "long yun qing mei lan xiao dong zi wen cheng zhi guo ning shan pei shu tian ran xi"
    )
)
#: Email domains of pinyin addresses, and the share of addresses at each.
EMAIL_DOMAINS: tuple[str, ...] = tuple(
    _words(
        "163.com qq.com 126.com gmail.com foxmail.com sina.com outlook.com hotmail.com "
        "139.com sohu.com"
    )
)
EMAIL_DOMAIN_SHARES: tuple[float, ...] = (0.26, 0.2, 0.12, 0.08, 0.08, 0.07, 0.08, 0.04, 0.04, 0.03)
