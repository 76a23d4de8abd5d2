"""The promotions rules, natively: codes, the discount, refusals, the state machine."""

import unittest
from datetime import datetime, timedelta, timezone

from promotions import rules

NOW = datetime(2026, 1, 15, 12, 0, tzinfo=timezone.utc)


def coupon(**kw):
    base = dict(
        kind="percent",
        value=10,
        min_cart_value=0,
        max_discount=None,
        starts_at=None,
        ends_at=None,
        max_uses=None,
        max_uses_per_customer=None,
        uses=0,
    )
    base.update(kw)
    return rules.Coupon(**base)


class CodesTest(unittest.TestCase):
    def test_codes(self):
        self.assertEqual(rules.normalize_code("  diwali50 "), "DIWALI50")
        for ok in ("ABC", "A" * 20, "SAVE10"):
            self.assertTrue(rules.is_code(ok), ok)
        for bad in ("AB", "A" * 21, "SAVE-10", "SAVE 10", "SÄVE10", "١٢٣٤"):
            self.assertFalse(rules.is_code(rules.normalize_code(bad)), bad)

    def test_hold_ids(self):
        self.assertTrue(rules.is_hold_id("hld_0190aa-x"))
        for bad in ("", "../x", "hld/1", "a b", "hld?x=1", "h" * 129):
            self.assertFalse(rules.is_hold_id(bad), bad)


class DiscountTest(unittest.TestCase):
    def test_percent_rounds_down_and_caps(self):
        self.assertEqual(rules.discount("percent", 10, None, 30009), 3000)
        self.assertEqual(rules.discount("percent", 10, 5000, 100000), 5000)
        self.assertEqual(rules.discount("percent", 90, None, 1), 0)

    def test_flat_never_passes_the_subtotal(self):
        self.assertEqual(rules.discount("flat", 2000, None, 10000), 2000)
        self.assertEqual(rules.discount("flat", 2000, None, 1500), 1500)
        self.assertEqual(rules.discount("flat", 2000, None, 0), 0)


class RefusalTest(unittest.TestCase):
    def reason(self, c, subtotal=10000, mine=0):
        r = rules.refusal(c, subtotal, mine, NOW)
        return None if r is None else r.reason

    def test_each_reason(self):
        self.assertIsNone(self.reason(coupon()))
        self.assertEqual(self.reason(coupon(starts_at=NOW + timedelta(seconds=1))), "not_started")
        self.assertIsNone(self.reason(coupon(starts_at=NOW)))
        self.assertEqual(self.reason(coupon(ends_at=NOW)), "expired")
        self.assertEqual(self.reason(coupon(min_cart_value=10001)), "below_min_cart_value")
        self.assertIsNone(self.reason(coupon(min_cart_value=10000)))
        self.assertEqual(self.reason(coupon(max_uses=3, uses=3)), "used_up")
        self.assertIsNone(self.reason(coupon(max_uses=3, uses=2)))
        self.assertEqual(self.reason(coupon(max_uses_per_customer=1), mine=1), "used_up_for_customer")
        self.assertTrue(rules.refusal(coupon(max_uses=1, uses=1), 1, 0, NOW).used_up)


class StateMachineTest(unittest.TestCase):
    def test_every_step(self):
        step = rules.step
        self.assertEqual(step("held", rules.ORDER_CREATED), ("confirmed", rules.KEEP))
        self.assertEqual(step("held", rules.EXPIRED_WITH_ORDER), ("confirmed", rules.KEEP))
        self.assertEqual(step("held", rules.EXPIRED_WITHOUT_ORDER), ("released", rules.GIVE_BACK))
        self.assertEqual(step("held", rules.RELEASE), ("released", rules.GIVE_BACK))
        self.assertEqual(step("held", rules.ORDER_CANCELLED), ("returned", rules.GIVE_BACK))
        self.assertEqual(step("confirmed", rules.ORDER_CANCELLED), ("returned", rules.GIVE_BACK))
        self.assertEqual(step("released", rules.ORDER_CREATED), ("confirmed", rules.TAKE_AGAIN))
        self.assertEqual(step("released", rules.ORDER_CANCELLED), ("returned", rules.KEEP))

    def test_a_use_moves_at_most_once_per_redemption(self):
        # Whatever order the triggers come in, the use is given back at most once more
        # than it is taken again, and a returned redemption never moves.
        import itertools

        for triggers in itertools.product(rules.TRIGGERS, repeat=4):
            status, held = "held", 1
            for t in triggers:
                planned = rules.step(status, t)
                if planned is None:
                    continue
                status, movement = planned
                held += {rules.KEEP: 0, rules.GIVE_BACK: -1, rules.TAKE_AGAIN: 1}[movement]
                self.assertIn(held, (0, 1), triggers)
            self.assertEqual(held, 1 if status in ("held", "confirmed") else 0, triggers)
        for t in rules.TRIGGERS:
            self.assertIsNone(rules.step("returned", t))


if __name__ == "__main__":
    unittest.main()
