"""Staff accounts: roles (客服 agent, 运营 operator, 管理员 admin) and the lots they serve."""
