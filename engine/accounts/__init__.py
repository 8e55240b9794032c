"""Accounts and balances (CGRateS balance model), debit planning, actions and the ledger."""

from engine.accounts.actions import BalanceParams, LedgerRef
from engine.accounts.debit import BalanceCharge, DebitPlan
from engine.accounts.model import (
    Account, Balance, account_to_v1_legacy, account_to_v2,
)
from engine.accounts.service import AccountService, AuditMismatch, SettleResult

__all__ = [
    "Account", "AccountService", "AuditMismatch", "Balance", "BalanceCharge", "BalanceParams",
    "DebitPlan", "LedgerRef", "SettleResult", "account_to_v1_legacy", "account_to_v2",
]
