"""APIerSv1 / APIerSv2: accounts, balances, costs and tariff-plan loading.

Shapes from research/cgrates-apier.md: v1 GetAccount keeps the legacy
``*out`` structure, v2 returns the real account; a missing account is exactly
``NOT_FOUND``; GetCost rating errors are wrapped ``SERVER_ERROR: <inner>``.
"""

from __future__ import annotations

import os
from typing import Any, Awaitable, Callable

from agents.jsonrpc.dispatcher import CallContext, Handler
from agents.jsonrpc.methods.args import flag, optional_int, require, string_list, text
from engine.accounts.model import account_to_v1_legacy, account_to_v2
from engine.errors import (
    INVALID_ARGUMENT,
    INVALID_PATH,
    NOT_FOUND,
    SERVER_ERROR,
    ChargingError,
    mandatory_missing,
)
from engine.units import parse_duration, parse_time, to_decimal, utcnow

OK = "OK"
TariffPlanLoader = Callable[..., Awaitable[Any]]


class ApierApi:
    """Handlers for APIerSv1/APIerSv2 over AccountService, the Rater and the TP loader."""

    def __init__(self, accounts: Any, rater: Callable[[], Any], load_tariffplan: TariffPlanLoader | None,
                 default_tenant: str = "cgrates.org", default_category: str = "call") -> None:
        self.accounts = accounts
        self.rater = rater
        self.load_tariffplan = load_tariffplan
        self.default_tenant = default_tenant
        self.default_category = default_category

    def handlers(self) -> dict[str, Handler]:
        return {
            "APIerSv1.GetCost": self.get_cost,
            "APIerSv1.LoadTariffPlanFromFolder": self.load_tp_from_folder,
            "APIerSv1.SetAccount": self.set_account_v1,
            "APIerSv1.GetAccount": self.get_account_v1,
            "APIerSv1.RemoveAccount": self.remove_account,
            "APIerSv1.AddBalance": self.add_balance,
            "APIerSv1.DebitBalance": self.debit_balance,
            "APIerSv1.SetBalance": self.set_balance,
            "APIerSv2.GetAccount": self.get_account_v2,
            "APIerSv2.GetAccounts": self.get_accounts_v2,
            "APIerSv2.SetAccount": self.set_account_v2,
        }

    def _tenant(self, args: dict[str, Any]) -> str:
        return text(args, "Tenant", self.default_tenant)

    # -- costs ------------------------------------------------------------
    async def get_cost(self, args: dict[str, Any], ctx: CallContext) -> Any:
        from engine.rating.rater import RatingRequest  # rating is loaded lazily with the plan

        require(args, "Subject")
        start = parse_time(args.get("AnswerTime") or "*now") or utcnow()
        request = RatingRequest(
            tenant=self._tenant(args),
            category=text(args, "Category", self.default_category),
            subject=text(args, "Subject"),
            destination=text(args, "Destination"),
            start=start,
            usage=parse_duration(args.get("Usage")),
            tor=text(args, "ToR", "*voice"),
        )
        try:
            result = self.rater().rate(request)
        except ChargingError as exc:
            if exc.code == SERVER_ERROR or exc.code == INVALID_ARGUMENT:
                raise
            raise ChargingError(SERVER_ERROR, exc.wire()) from None
        return result.to_event_cost()

    # -- tariff plans -----------------------------------------------------
    async def load_tp_from_folder(self, args: dict[str, Any], ctx: CallContext) -> Any:
        folder = text(args, "FolderPath")
        if not folder:
            raise mandatory_missing("FolderPath")
        if not os.path.isdir(folder):
            raise ChargingError(INVALID_PATH)
        if self.load_tariffplan is None:
            raise ChargingError(SERVER_ERROR, "tariff plan loading is not available in this process")
        try:
            await self.load_tariffplan(folder, dry_run=flag(args, "DryRun"))
        except ChargingError:
            raise
        except Exception as exc:  # TariffPlanError names file, line and column: pass it on
            raise ChargingError(SERVER_ERROR, str(exc)) from None
        return OK

    # -- accounts ---------------------------------------------------------
    async def _get(self, args: dict[str, Any]) -> Any:
        require(args, "Account")
        account = self.accounts.get(self._tenant(args), text(args, "Account"))
        if hasattr(account, "__await__"):
            account = await account
        if account is None:
            raise ChargingError(NOT_FOUND)
        return account

    async def get_account_v1(self, args: dict[str, Any], ctx: CallContext) -> Any:
        return account_to_v1_legacy(await self._get(args))

    async def get_account_v2(self, args: dict[str, Any], ctx: CallContext) -> Any:
        return account_to_v2(await self._get(args))

    async def get_accounts_v2(self, args: dict[str, Any], ctx: CallContext) -> Any:
        tenant = self._tenant(args)
        ids = string_list(args, "AccountIDs")
        if ids:
            found = []
            for account_id in ids:
                account = self.accounts.get(tenant, account_id)
                if hasattr(account, "__await__"):
                    account = await account
                if account is not None:
                    found.append(account)
        else:
            found = list(self.accounts.accounts(tenant))
        offset = optional_int(args, "Offset") or 0
        limit = optional_int(args, "Limit")
        page = found[offset:offset + limit] if limit else found[offset:]
        if not page:
            return None  # CGRateS: no matches is null, not an error
        return [account_to_v2(a) for a in page]

    async def set_account_v1(self, args: dict[str, Any], ctx: CallContext) -> Any:
        require(args, "Account")
        options = args.get("ExtraOptions") or {}
        if not isinstance(options, dict):
            raise ChargingError(INVALID_ARGUMENT, "ExtraOptions must be an object")
        plans = [text(args, "ActionPlanID")] if text(args, "ActionPlanID") else []
        triggers = [text(args, "ActionTriggersID")] if text(args, "ActionTriggersID") else []
        await self._set_account(args, options, plans, triggers)
        return OK

    async def set_account_v2(self, args: dict[str, Any], ctx: CallContext) -> Any:
        require(args, "Account")
        options = args.get("ExtraOptions") or {}
        if not isinstance(options, dict):
            raise ChargingError(INVALID_ARGUMENT, "ExtraOptions must be an object")
        await self._set_account(args, options, string_list(args, "ActionPlanIDs"),
                                string_list(args, "ActionTriggerIDs"))
        return OK

    async def _set_account(self, args: dict[str, Any], options: dict[str, Any], plans: list[str],
                           triggers: list[str]) -> None:
        for key in ("AllowNegative", "Disabled"):
            if key in options and not isinstance(options[key], bool):
                raise ChargingError(INVALID_ARGUMENT, f"ExtraOptions.{key} must be true or false")
        tenant, account = self._tenant(args), text(args, "Account")
        await self.accounts.set_account(
            tenant, account,
            allow_negative=options.get("AllowNegative"),
            disabled=options.get("Disabled"),
            action_plan_id=plans[0] if plans else "",
            action_triggers_id=triggers[0] if triggers else "",
        )
        # APIerSv2 takes lists; the account service attaches one plan/trigger set per call.
        for plan_id in plans[1:]:
            await self.accounts.set_account(tenant, account, action_plan_id=plan_id)
        for triggers_id in triggers[1:]:
            await self.accounts.set_account(tenant, account, action_triggers_id=triggers_id)

    async def remove_account(self, args: dict[str, Any], ctx: CallContext) -> Any:
        require(args, "Account")
        await self.accounts.remove_account(self._tenant(args), text(args, "Account"))
        return OK

    # -- balances ---------------------------------------------------------
    def _balance_args(self, args: dict[str, Any], *, allow_zero: bool) -> tuple[str, str, str, Any, dict]:
        require(args, "Account", "BalanceType")
        value = args.get("Value")
        if value is None or value == "":
            if not allow_zero:
                raise mandatory_missing("Value")
            value = 0
        balance_type = text(args, "BalanceType")
        # Unit balances may be given as durations ("1h") for *voice; money stays Decimal.
        amount = parse_duration(value) if balance_type == "*voice" and isinstance(value, str) \
            and not _is_number(value) else to_decimal(value)
        if not allow_zero and amount == 0:
            raise mandatory_missing("Value")
        params = args.get("Balance") or {}
        if not isinstance(params, dict):
            raise ChargingError(INVALID_ARGUMENT, "Balance must be an object")
        return self._tenant(args), text(args, "Account"), balance_type, to_decimal(amount), params

    async def add_balance(self, args: dict[str, Any], ctx: CallContext) -> Any:
        tenant, account, btype, value, params = self._balance_args(args, allow_zero=False)
        await self.accounts.add_balance(tenant, account, btype, abs(value), params,
                                        overwrite=flag(args, "Overwrite"))
        return OK

    async def debit_balance(self, args: dict[str, Any], ctx: CallContext) -> Any:
        tenant, account, btype, value, params = self._balance_args(args, allow_zero=False)
        await self.accounts.debit_balance(tenant, account, btype, abs(value), params,
                                          overwrite=flag(args, "Overwrite"))
        return OK

    async def set_balance(self, args: dict[str, Any], ctx: CallContext) -> Any:
        tenant, account, btype, value, params = self._balance_args(args, allow_zero=True)
        if not (params.get("ID") or params.get("UUID")):
            raise mandatory_missing("BalanceID or BalanceUUID")
        await self.accounts.set_balance(tenant, account, btype, value, params)
        return OK


def _is_number(value: str) -> bool:
    try:
        to_decimal(value)
    except ChargingError:
        return False
    return True
