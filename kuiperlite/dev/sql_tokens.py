"""eKuiper's SQL tokens, the functions and windows its parser knows, and Go's texts.

The token numbers are eKuiper's ``ast.Token`` order; Go's texts are
``strconv``'s unquoting and ``%q`` quoting, as eKuiper's errors print them.
"""

from __future__ import annotations

# ast.Token, in eKuiper's order (its pkg/ast/token.go at the corpus's commit).
(ILLEGAL, EOF, WS, COMMENT, AS, IDENT, INTEGER, NUMBER, STRING, SINGLEQUOTE, BADSTRING,
 OPERATORS_BEGIN, ADD, SUB, MUL, DIV, MOD, BITWISE_AND, BITWISE_OR, BITWISE_XOR, AND, OR,
 EQ, NEQ, LT, LTE, GT, GTE, SUBSET, ARROW, IN, NOT, NOTIN, BETWEEN, NOTBETWEEN, LIKE, NOTLIKE,
 REPLACE, EXCEPT, OPERATORS_END, ASTERISK, COMMA, LPAREN, RPAREN, LBRACKET, RBRACKET, HASH,
 DOT, COLON, SEMICOLON, COLSEP, SELECT, FROM, JOIN, INNER, LEFT, RIGHT, FULL, CROSS, ON, WHERE,
 LIMIT, GROUP, ORDER, HAVING, BY, ASC, DESC, FILTER, CASE, WHEN, THEN, ELSE, END, OVER,
 PARTITION, INVISIBLE, DEFAULT, TRUE, FALSE, DD, HH, MI, SS, MS) = range(85)

# How eKuiper writes each token in messages (ast.Tokens); the others are "".
TEXT = {ILLEGAL: "ILLEGAL", EOF: "EOF", AS: "AS", WS: "WS", IDENT: "IDENT",
         INTEGER: "INTEGER", NUMBER: "NUMBER", STRING: "STRING", SINGLEQUOTE: "SINGLEQUOTE",
         ADD: "+", SUB: "-", MUL: "*", DIV: "/", MOD: "%", BITWISE_AND: "&", BITWISE_OR: "|",
         BITWISE_XOR: "^", EQ: "=", NEQ: "!=", LT: "<", LTE: "<=", GT: ">", GTE: ">=",
         SUBSET: "[]", ARROW: "->", IN: "IN", ASTERISK: "*", COMMA: ",", LPAREN: "(",
         RPAREN: ")", LBRACKET: "[", RBRACKET: "]", HASH: "#", DOT: ".", SEMICOLON: ";",
         COLON: ":", COLSEP: "\007", NOTIN: "NOT IN", NOTBETWEEN: "NOT BETWEEN",
         NOTLIKE: "NOT LIKE"}
TEXT.update({token: word for word, token in (
    ("SELECT", SELECT), ("FROM", FROM), ("JOIN", JOIN), ("LEFT", LEFT), ("INNER", INNER),
    ("ON", ON), ("WHERE", WHERE), ("LIMIT", LIMIT), ("GROUP", GROUP), ("ORDER", ORDER),
    ("HAVING", HAVING), ("BY", BY), ("ASC", ASC), ("DESC", DESC), ("FILTER", FILTER),
    ("CASE", CASE), ("WHEN", WHEN), ("THEN", THEN), ("ELSE", ELSE), ("END", END),
    ("OVER", OVER), ("PARTITION", PARTITION), ("INVISIBLE", INVISIBLE), ("DEFAULT", DEFAULT),
    ("AND", AND), ("OR", OR), ("TRUE", TRUE), ("FALSE", FALSE), ("BETWEEN", BETWEEN),
    ("LIKE", LIKE), ("REPLACE", REPLACE), ("EXCEPT", EXCEPT), ("DD", DD), ("HH", HH),
    ("MI", MI), ("SS", SS), ("MS", MS))})

# The words the lexer takes for keywords, whatever their case.
KEYWORDS = {"SELECT": SELECT, "AS": AS, "FROM": FROM, "WHERE": WHERE, "AND": AND, "OR": OR,
             "GROUP": GROUP, "HAVING": HAVING, "ORDER": ORDER, "BY": BY, "DESC": DESC,
             "ASC": ASC, "FILTER": FILTER, "INNER": INNER, "LEFT": LEFT, "RIGHT": RIGHT,
             "FULL": FULL, "CROSS": CROSS, "JOIN": JOIN, "ON": ON, "CASE": CASE, "WHEN": WHEN,
             "THEN": THEN, "DEFAULT": DEFAULT, "ELSE": ELSE, "END": END, "IN": IN, "NOT": NOT,
             "BETWEEN": BETWEEN, "LIKE": LIKE, "OVER": OVER, "PARTITION": PARTITION,
             "REPLACE": REPLACE, "EXCEPT": EXCEPT, "INVISIBLE": INVISIBLE, "TRUE": TRUE,
             "FALSE": FALSE, "DD": DD, "HH": HH, "MI": MI, "SS": SS, "MS": MS, "LIMIT": LIMIT}

PRECEDENCE = {OR: 1, AND: 2, **dict.fromkeys(
    (EQ, NEQ, LT, LTE, GT, GTE, IN, NOTIN, BETWEEN, NOTBETWEEN, LIKE, NOTLIKE), 3),
    **dict.fromkeys((ADD, SUB, BITWISE_OR, BITWISE_XOR), 4),
    **dict.fromkeys((MUL, DIV, MOD, BITWISE_AND, SUBSET, ARROW, DOT), 5)}

# Operations that are true or false (ast.IsBooleanArg).
CONDITIONS = frozenset({AND, OR, EQ, NEQ, LT, LTE, GT, GTE, BETWEEN, NOTBETWEEN, IN, NOTIN,
                        LIKE, NOTLIKE})

# ast.FuncType
UNKNOWN_FUNC, SCALAR, AGGREGATE, COLS, SET_RETURNING, WINDOW_FUNC, TRIGGER = range(-1, 6)

# eKuiper's built-in functions by ast.FuncType (its internal/binder/function at the
# corpus's commit). Their names are not case-sensitive; a portable function's is.
BUILTINS: dict[str, int] = {name: kind for kind, names in (
    (SCALAR, """abs acc_avg acc_count acc_max acc_min acc_sum acos array_cardinality
     array_concat array_contains array_contains_any array_create array_distinct array_except
     array_flatten array_intersect array_join array_last_position array_map array_max
     array_min array_position array_remove array_shuffle array_sort array_union asin atan
     atan2 bitand bitnot bitor bitxor bypass cardinality cast ceil ceiling changed_col chr
     coalesce compress concat conv convert_tz cos cosh cot crc32 cur_date cur_time
     current_date current_time current_timestamp date_calc date_diff day day_name
     day_of_month day_of_week day_of_year dec2hex decode decompress degrees delay
     element_at encode endswith erase event_time exp floor format format_time from_days
     from_unix_time get_keyed_state had_changed hex2dec hour inc_avg inc_collect inc_count
     inc_last_value inc_max inc_merge_agg inc_min inc_sum indexof isnull items
     json_path_exists json_path_query json_path_query_first keys kvpair_array_to_obj lag
     last_day last_hit_count last_hit_time latest length ln local_time local_timestamp log
     lower lpad ltrim md5 meta microsecond minute mod month month_name mqtt newuuid now
     numbytes obj_to_kvpair_array object object_concat object_construct object_pick
     object_size parse_json pi pow power props radians rand regexp_matches regexp_replace
     regexp_substr repeat reverse round rpad rtrim rule_id rule_start second sequence sha1
     sha256 sha384 sha512 sign sin sinh split_value sqrt startswith substring tan tanh
     to_json to_seconds trim trunc tstamp upper values window_end window_start
     window_trigger zip"""),
    (AGGREGATE, """avg collect count deduplicate last_agg_hit_count last_agg_hit_time
     last_value max median merge_agg min percentile_cont percentile_disc stddev stddevs sum
     var vars"""),
    (COLS, "changed_cols"),
    (SET_RETURNING, "extract unnest"),
    (WINDOW_FUNC, "row_number"),
) for name in names.split()}

ANALYTIC = frozenset(("lag", "changed_col", "had_changed", "latest", "acc_sum", "acc_min",
                       "acc_max", "acc_avg", "acc_count"))
# ast.WindowType of each window function; dedup_trigger is named like them, but is a call.
NOT_WINDOW, TUMBLING, HOPPING, SLIDING, SESSION, COUNT, STATE = range(7)
WINDOWS = {"tumblingwindow": TUMBLING, "hoppingwindow": HOPPING, "slidingwindow": SLIDING,
            "sessionwindow": SESSION, "countwindow": COUNT, "statewindow": STATE,
            "dedup_trigger": NOT_WINDOW}
WINDOW_NAMES = {TUMBLING: "TUMBLING_WINDOW", HOPPING: "HOPPING_WINDOW",
                 SLIDING: "SLIDING_WINDOW", SESSION: "SESSION_WINDOW", COUNT: "COUNT_WINDOW",
                 NOT_WINDOW: "NOT_WINDOW"}
_INT64 = (-(2 ** 63), 2 ** 63 - 1)
SPACES = frozenset(" \t\r\n")
SOURCE_TOKENS = (IDENT, DIV, HASH, ADD)  # what a FROM's name may be made of (MQTT topics)
# The characters that are a token by themselves ("": the end of the input).
SINGLE = {"": EOF, "=": EQ, "+": ADD, "%": MOD, "&": BITWISE_AND, "|": BITWISE_OR,
           "^": BITWISE_XOR, "*": ASTERISK, ",": COMMA, "(": LPAREN, ")": RPAREN, "[": LBRACKET,
           "]": RBRACKET, ":": COLON, "#": HASH, ";": SEMICOLON}


class SqlError(ValueError):
    """eKuiper's parser refused a statement; ``str(err)`` is its error text."""


# ------------------------------------------------------------ Go's texts

def go_atoi(text: str) -> tuple[int, bool]:
    """Go's strconv.Atoi: the value, clamped to int64, and whether it fit."""
    value = int(text)
    low, high = _INT64
    return min(max(value, low), high), low <= value <= high


_GO_ESCAPES = {"a": b"\a", "b": b"\b", "f": b"\f", "n": b"\n", "r": b"\r", "t": b"\t",
               "v": b"\v", "\\": b"\\", '"': b'"'}


def go_unquote(quoted: str) -> str:
    """Go's strconv.Unquote of a double-quoted literal.

    Raises:
        ValueError: Go refuses it (an unknown escape, a raw newline, a quote inside).
    """
    body = quoted[1:-1]
    out = bytearray()
    i = 0
    while i < len(body):
        ch = body[i]
        i += 1
        if ch in ('"', "\n"):
            raise ValueError(quoted)
        if ch != "\\":
            out += ch.encode("utf-8", "surrogatepass")
            continue
        escape = body[i:i + 1]
        i += 1
        if escape in _GO_ESCAPES:
            out += _GO_ESCAPES[escape]
        elif escape in ("x", "u", "U"):
            width = {"x": 2, "u": 4, "U": 8}[escape]
            digits = body[i:i + width]
            i += width
            if len(digits) != width or not all(c in "0123456789abcdefABCDEF" for c in digits):
                raise ValueError(quoted)
            code = int(digits, 16)
            if escape == "x":
                out.append(code)
            elif code > 0x10FFFF or 0xD800 <= code < 0xE000:
                raise ValueError(quoted)
            else:
                out += chr(code).encode()
        elif escape and escape in "01234567":
            digits = escape + body[i:i + 2]
            i += 2
            if len(digits) != 3 or not all(c in "01234567" for c in digits) \
                    or int(digits, 8) > 255:
                raise ValueError(quoted)
            out.append(int(digits, 8))
        else:
            raise ValueError(quoted)
    return go_string(bytes(out))


def go_string(raw: bytes) -> str:
    """Bytes as Go shows them as text: each byte that is not part of valid UTF-8 is U+FFFD."""
    try:
        return raw.decode()
    except UnicodeDecodeError:
        pass
    out = []
    i = 0
    while i < len(raw):
        lead = raw[i]
        size = 1 if lead < 0x80 else 2 if 0xC2 <= lead < 0xE0 else 3 if 0xE0 <= lead < 0xF0 \
            else 4 if 0xF0 <= lead < 0xF5 else 0
        try:
            out.append(raw[i:i + size].decode() if size else "\ufffd")
            i += size or 1
        except UnicodeDecodeError:
            out.append("\ufffd")
            i += 1
    return "".join(out)


_QUOTE_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r",
                  "\t": "\\t", "\v": "\\v", '"': '\\"', "\\": "\\\\"}


def go_quote(value: str) -> str:
    """Go's %q of a string (strconv.Quote)."""
    out = []
    for ch in value:
        code = ord(ch)
        if ch in _QUOTE_ESCAPES:
            out.append(_QUOTE_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        elif code < 0x80:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    return '"' + "".join(out) + '"'
