"""SQL fragments several views are built from (one spelling of each)."""

from __future__ import annotations

from schemas.attribution_credit import AttributionModel

SENT_MESSAGES = "(SELECT * FROM funnel_rows FINAL WHERE has_send)"


# Credits are exact decimals: amount Decimal(38,10) x weight Decimal(38,20) in Decimal256, so no
# sum of fractional credits loses a digit before display rounding.
MODELS_ARRAY = "[" + ", ".join(f"'{m.value}'" for m in AttributionModel) + "]"


# Each conversion's credits, once at its amount and once at each of its adjustments (in the
# adjustment's currency): net revenue is their sum, and only the first counts as a conversion.
NET_CREDIT_LINES = """
    SELECT account, model, currency, amount, message_id, weight, adjusting
    FROM (
        SELECT account, model, currency, amount, message_ids, weights, false AS adjusting
        FROM attribution_credits FINAL
        UNION ALL
        SELECT account, model, a.currency AS currency, a.amount AS amount, message_ids, weights,
            true AS adjusting
        FROM (
            SELECT account, order_id, model, message_ids, weights FROM attribution_credits FINAL
        ) AS k
        INNER JOIN (
            SELECT account, order_id, currency, amount FROM conversion_adjustments FINAL
        ) AS a USING (account, order_id)
    )
    ARRAY JOIN message_ids AS message_id, weights AS weight"""


def z_test(x: str, y: str, n: str, m: str, part: int) -> str:
    """Two-sided pooled two-proportion z-test of x/n against y/m (ClickHouse's proportionsZTest);
    NULL where it is undefined (no trials, or every or no trial a success)."""
    return (
        f"if({n} = 0 OR {m} = 0 OR {x} + {y} = 0 OR {x} + {y} = {n} + {m}, NULL, "
        f"tupleElement(proportionsZTest({x}, {y}, {n}, {m}, 0.95, 'pooled'), {part}))"
    )
