//! A service that calls another one.

use nameko::prelude::*;

use crate::calculator::CalculatorClient;

/// `user_service`: scores users with the calculator's help.
#[derive(Debug, Dependencies)]
pub struct UserService {
    calculator: CalculatorClient,
}

#[service(name = "user_service")]
impl UserService {
    /// `{"user_id": user_id, "score": base_score * multiplier}`, the product computed by
    /// `calculator.multiply`.
    #[rpc]
    pub async fn calculate_user_score(
        &self,
        user_id: Value,
        base_score: f64,
        multiplier: f64,
    ) -> Result<Value, RpcError> {
        let score = self.calculator.multiply(base_score, multiplier).await?;
        Ok(json!({"user_id": user_id, "score": score}))
    }
}
