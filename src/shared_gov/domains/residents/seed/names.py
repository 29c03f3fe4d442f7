"""Invented names: common Japanese family names, and given names by birth cohort.

Each name comes with its reading (フリガナ); a person's given name is drawn
from the cohort of their birth year (:func:`_cohort`), so that a grandmother
is 和子 and a baby is 陽葵.
"""

from __future__ import annotations

from datetime import date
from typing import Final


def _pairs(text: str) -> tuple[tuple[str, str], ...]:
    """Parse whitespace-separated ``表記:フリガナ`` pairs."""
    pairs = []
    for item in text.split():
        written, kana = item.split(":")
        pairs.append((written, kana))
    return tuple(pairs)


# (表記, フリガナ). Family names roughly in order of frequency nationwide; the
# generator draws the first ones more often.

FAMILY_NAMES: Final[tuple[tuple[str, str], ...]] = _pairs(
    """
    佐藤:サトウ  鈴木:スズキ  高橋:タカハシ  田中:タナカ  伊藤:イトウ  渡辺:ワタナベ
    山本:ヤマモト  中村:ナカムラ  小林:コバヤシ  加藤:カトウ  吉田:ヨシダ  山田:ヤマダ
    佐々木:ササキ  山口:ヤマグチ  松本:マツモト  井上:イノウエ  木村:キムラ  林:ハヤシ
    斎藤:サイトウ  清水:シミズ  山崎:ヤマザキ  森:モリ  池田:イケダ  橋本:ハシモト
    阿部:アベ  石川:イシカワ  山下:ヤマシタ  中島:ナカジマ  石井:イシイ  小川:オガワ
    前田:マエダ  岡田:オカダ  長谷川:ハセガワ  藤田:フジタ  後藤:ゴトウ  近藤:コンドウ
    村上:ムラカミ  遠藤:エンドウ  青木:アオキ  坂本:サカモト  斉藤:サイトウ  福田:フクダ
    太田:オオタ  西村:ニシムラ  藤井:フジイ  金子:カネコ  岡本:オカモト  藤原:フジワラ
    中野:ナカノ  三浦:ミウラ  原田:ハラダ  中川:ナカガワ  松田:マツダ  竹内:タケウチ
    小野:オノ  田村:タムラ  中山:ナカヤマ  和田:ワダ  石田:イシダ  森田:モリタ
    上田:ウエダ  原:ハラ  内田:ウチダ  柴田:シバタ  酒井:サカイ  宮崎:ミヤザキ
    横山:ヨコヤマ  高木:タカギ  安藤:アンドウ  宮本:ミヤモト  大野:オオノ  小島:コジマ
    谷口:タニグチ  今井:イマイ  工藤:クドウ  高田:タカダ  増田:マスダ  丸山:マルヤマ
    杉山:スギヤマ  村田:ムラタ  大塚:オオツカ  新井:アライ  小山:コヤマ  平野:ヒラノ
    藤本:フジモト  河野:コウノ  上野:ウエノ  野口:ノグチ  武田:タケダ  松井:マツイ
    千葉:チバ  岩崎:イワサキ  菅原:スガワラ  木下:キノシタ  久保:クボ  野村:ノムラ
    松尾:マツオ  北村:キタムラ  中西:ナカニシ  山岸:ヤマギシ
    """
)

# Given names by birth cohort, so that a grandmother is 和子 and a baby is 陽葵.
_BORN_BEFORE_1956: Final = 0
_BORN_1956_TO_1989: Final = 1
_BORN_1990_OR_LATER: Final = 2

_MALE_NAMES_BY_COHORT: Final[tuple[tuple[tuple[str, str], ...], ...]] = (
    # born before 1956
    _pairs(
        """
        清:キヨシ  茂:シゲル  博:ヒロシ  実:ミノル  勇:イサム
        進:ススム  勝:マサル  正:タダシ  武:タケシ  昭:アキラ
        隆:タカシ  正雄:マサオ  一郎:イチロウ  和夫:カズオ  義男:ヨシオ
        幸雄:ユキオ  三郎:サブロウ  久雄:ヒサオ  秀夫:ヒデオ  敏夫:トシオ
        """
    ),
    # born 1956-1989
    _pairs(
        """
        誠:マコト  浩:ヒロシ  健一:ケンイチ  大輔:ダイスケ  直樹:ナオキ
        哲也:テツヤ  剛:ツヨシ  拓也:タクヤ  和也:カズヤ  達也:タツヤ
        聡:サトシ  学:マナブ  修:オサム  秀樹:ヒデキ  隆之:タカユキ
        洋平:ヨウヘイ  健二:ケンジ  浩二:コウジ  裕介:ユウスケ  雅人:マサト
        """
    ),
    # born 1990 or later
    _pairs(
        """
        蓮:レン  陽翔:ハルト  湊:ミナト  大翔:ヒロト  悠真:ユウマ
        颯太:ソウタ  陽向:ヒナタ  樹:イツキ  悠斗:ユウト  翔:ショウ
        大和:ヤマト  律:リツ  蒼:アオイ  朝陽:アサヒ  健太:ケンタ
        拓海:タクミ  翔太:ショウタ  陸:リク  海斗:カイト  大輝:ダイキ
        """
    ),
)

_FEMALE_NAMES_BY_COHORT: Final[tuple[tuple[tuple[str, str], ...], ...]] = (
    # born before 1956
    _pairs(
        """
        和子:カズコ  幸子:サチコ  節子:セツコ  洋子:ヨウコ  恵子:ケイコ
        京子:キョウコ  美代子:ミヨコ  久子:ヒサコ  静子:シズコ  文子:フミコ
        敏子:トシコ  千代子:チヨコ  君子:キミコ  悦子:エツコ  弘子:ヒロコ
        光子:ミツコ  春子:ハルコ  登美子:トミコ  信子:ノブコ  ミツ:ミツ
        """
    ),
    # born 1956-1989
    _pairs(
        """
        裕子:ユウコ  真由美:マユミ  智子:トモコ  恵美:エミ  久美子:クミコ
        明美:アケミ  由美子:ユミコ  直美:ナオミ  陽子:ヨウコ  美穂:ミホ
        愛:アイ  恵:メグミ  香織:カオリ  麻衣:マイ  典子:ノリコ
        千尋:チヒロ  綾香:アヤカ  沙織:サオリ  由佳:ユカ  純子:ジュンコ
        """
    ),
    # born 1990 or later
    _pairs(
        """
        陽葵:ヒマリ  凛:リン  結衣:ユイ  結菜:ユイナ  芽依:メイ
        紬:ツムギ  葵:アオイ  さくら:サクラ  美咲:ミサキ  莉子:リコ
        杏:アン  楓:カエデ  結愛:ユア  心春:コハル  彩花:アヤカ
        七海:ナナミ  花音:カノン  優奈:ユウナ  美羽:ミウ  澪:ミオ
        """
    ),
)

MALE_GIVEN_NAMES: Final[tuple[tuple[str, str], ...]] = tuple(
    name for cohort in _MALE_NAMES_BY_COHORT for name in cohort
)
FEMALE_GIVEN_NAMES: Final[tuple[tuple[str, str], ...]] = tuple(
    name for cohort in _FEMALE_NAMES_BY_COHORT for name in cohort
)


def _cohort(birth: date) -> int:
    if birth.year < 1956:
        return _BORN_BEFORE_1956
    if birth.year < 1990:
        return _BORN_1956_TO_1989
    return _BORN_1990_OR_LATER
